//! What a pidvisor that is not root may run (`docker run --user`, Kubernetes
//! `runAsUser`): services as its own user and group only. Switching users takes root, so
//! a service with another `user` is a configuration problem, named with its file and fix,
//! rather than a crash loop of "Operation not permitted".

use std::path::Path;

use crate::init::spawn::{Credentials, own_ids};
use crate::services::config::ConfigError;
use crate::services::spec::ServiceSpec;

/// Whether pidvisor, running as `own`, can start a process as `user`.
pub fn can_run_as(user: &Credentials, own: (u32, u32)) -> bool {
    own.0 == 0 || (user.uid, user.gid) == own
}

/// `spec` if pidvisor can run it as its `user`; else the problem, in `folder`'s
/// `service.toml`.
pub fn check_user(spec: ServiceSpec, folder: &Path) -> Result<ServiceSpec, Vec<ConfigError>> {
    let own = own_ids();
    let Some(user) = spec.user.as_ref().filter(|user| !can_run_as(user, own)) else {
        return Ok(spec);
    };
    Err(vec![ConfigError {
        service: Some(spec.name.clone()),
        file: folder.join("service.toml"),
        field: Some("user".to_owned()),
        line_col: None,
        message: format!(
            "pidvisor runs as uid {} gid {}, not root, so it cannot run this service as \
             \"{}\" (uid {} gid {})",
            own.0, own.1, user.user, user.uid, user.gid
        ),
        fix: "remove `user` (the service then runs as pidvisor's user), or start pidvisor \
              as root"
            .to_owned(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32) -> Credentials {
        Credentials {
            user: "u".into(),
            uid,
            gid,
            groups: vec![gid],
            home: None,
            no_new_privileges: true,
        }
    }

    #[test]
    fn root_runs_anyone_and_others_only_themselves() {
        assert!(can_run_as(&user(1000, 1000), (0, 0)));
        assert!(can_run_as(&user(1000, 1000), (1000, 1000)));
        assert!(!can_run_as(&user(0, 0), (1000, 1000)));
        assert!(!can_run_as(&user(1000, 50), (1000, 1000)));
    }
}
