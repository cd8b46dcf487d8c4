//! A container layout in a temp dir: `services.d/`, `cont-init.d/` and `cont-finish.d/`,
//! written by the tests, and pidvisor launched on it as PID 1.
//!
//! Every script is a `#!/bin/sh` file whose body the test gives; the services write what
//! they see to files in the temp dir (by absolute path), which the tests then read.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::harness::{Launch, Pidvisor, TempDir, sh_quote};

/// One test's temp dir with the three folders pidvisor reads.
pub struct Layout {
    pub dir: TempDir,
}

impl Layout {
    pub fn new(name: &str) -> Layout {
        let dir = TempDir::new(name);
        for folder in ["services.d", "cont-init.d", "cont-finish.d"] {
            fs::create_dir(dir.path().join(folder)).expect("mkdir");
        }
        Layout { dir }
    }

    /// The absolute path of `relative` in the temp dir, as a string.
    pub fn path(&self, relative: &str) -> String {
        self.dir.file(relative)
    }

    /// The same, quoted for `sh`.
    pub fn quoted(&self, relative: &str) -> String {
        sh_quote(&self.path(relative))
    }

    /// Writes `services.d/<service>/<relative>` with `text` and `mode`, creating folders.
    pub fn write(&self, service: &str, relative: &str, text: &str, mode: u32) {
        let path = self
            .dir
            .path()
            .join("services.d")
            .join(service)
            .join(relative);
        write_file(&path, text, mode);
    }

    /// A service whose `run` is a shell script with this body.
    pub fn service(&self, name: &str, body: &str) {
        self.write(name, "run", &script(body), 0o755);
    }

    /// A service with a `run` script and a `service.toml`.
    pub fn service_with(&self, name: &str, body: &str, toml: &str) {
        self.service(name, body);
        self.write(name, "service.toml", toml, 0o644);
    }

    /// An executable script with this body in `cont-init.d` or `cont-finish.d`.
    pub fn script_in(&self, folder: &str, name: &str, body: &str) {
        let path = self.dir.path().join(folder).join(name);
        write_file(&path, &script(body), 0o755);
    }

    /// pidvisor as PID 1 on this layout, with `args` after the folder options.
    pub fn launch(&self, args: &[&str]) -> Launch {
        let folders = [
            "--services-dir",
            &self.path("services.d"),
            "--init-dir",
            &self.path("cont-init.d"),
            "--finish-dir",
            &self.path("cont-finish.d"),
        ]
        .map(str::to_owned);
        let all: Vec<String> = folders
            .into_iter()
            .chain(args.iter().map(|a| (*a).to_owned()))
            .collect();
        Launch::pid1(&self.dir, &all)
    }

    /// pidvisor started on this layout, with no main command.
    pub fn start(&self) -> Pidvisor {
        self.launch(&[]).start()
    }

    /// The lines of a file the services write (none if it does not exist yet).
    pub fn lines(&self, relative: &str) -> Vec<String> {
        lines_of(&self.path(relative))
    }

    /// Waits until the file has at least `count` lines; returns them.
    pub fn wait_for_lines(
        &self,
        pidvisor: &mut Pidvisor,
        relative: &str,
        count: usize,
    ) -> Vec<String> {
        let path = self.path(relative);
        pidvisor.wait_until(&format!("{relative} has {count} lines"), |_| {
            lines_of(&path).len() >= count
        });
        lines_of(&path)
    }
}

/// Opens the FIFO at `path` for writing once a service has opened it for reading (until
/// then a non-blocking open fails with ENXIO, so this polls instead of blocking).
pub fn fifo_writer(pidvisor: &mut Pidvisor, path: &str) -> File {
    let mut writer = None;
    pidvisor.wait_until(&format!("{path} has a reader"), |_| {
        writer = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .ok();
        writer.is_some()
    });
    writer.expect("opened")
}

pub fn lines_of(path: &str) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn script(body: &str) -> String {
    format!("#!/bin/sh\n{body}\n")
}

fn write_file(path: &Path, text: &str, mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir -p");
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Lines of pidvisor's log (stderr) that contain `needle`.
pub fn log_count(stderr: &str, needle: &str) -> usize {
    stderr.lines().filter(|l| l.contains(needle)).count()
}
