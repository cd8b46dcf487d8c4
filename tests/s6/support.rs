//! What the s6 tests share: a folder laid out like an s6-overlay image (bin/ with the
//! links `--install-links` makes, services.d, cont-init.d), pidvisor started on it, and
//! the s6 commands run from the test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::harness::{Launch, PATIENCE, PIDVISOR, Pidvisor, Run, TempDir};

/// A test image: a temp dir with `bin/` holding pidvisor's links.
pub struct Image {
    pub dir: TempDir,
}

impl Image {
    pub fn new(name: &str) -> Image {
        let dir = TempDir::new(name);
        let bin = dir.file("bin");
        fs::create_dir(&bin).expect("bin");
        let output = Command::new(PIDVISOR)
            .args(["--install-links", &bin])
            .output()
            .expect("pidvisor --install-links");
        assert!(output.status.success(), "--install-links: {output:?}");
        Image { dir }
    }

    /// The path of `name` in the image's folder.
    pub fn path(&self, name: &str) -> String {
        self.dir.file(name)
    }

    /// `bin/NAME`.
    pub fn bin(&self, name: &str) -> String {
        self.dir.file(&format!("bin/{name}"))
    }

    /// The s6 runtime folder the harness gives pidvisor (`PIDVISOR_S6_DIR`).
    pub fn s6(&self, name: &str) -> String {
        self.dir.file(&format!("s6/{name}"))
    }

    /// Writes an executable file; `@BIN@` in `text` becomes the bin folder.
    pub fn script(&self, relative: &str, text: &str) {
        let path = self.dir.path().join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
        fs::write(&path, text.replace("@BIN@", &self.path("bin"))).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// Writes a plain file.
    pub fn file(&self, relative: &str, text: &str) {
        let path = self.dir.path().join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
        fs::write(&path, text).expect("write file");
    }

    /// pidvisor as PID 1 on the image's folders, with bin/ first on the PATH, then `args`.
    pub fn launch(&self, env: &[(&str, &str)], args: &[&str]) -> Launch {
        for folder in ["services.d", "cont-init.d", "cont-finish.d"] {
            fs::create_dir_all(self.dir.path().join(folder)).expect("folder");
        }
        let mut words = vec![
            "--services-dir".to_owned(),
            self.path("services.d"),
            "--init-dir".to_owned(),
            self.path("cont-init.d"),
            "--finish-dir".to_owned(),
            self.path("cont-finish.d"),
        ];
        words.extend(args.iter().map(|a| (*a).to_owned()));
        let mut launch = Launch::pid1(&self.dir, &words).env("PATH", &self.search_path());
        for (name, value) in env {
            launch = launch.env(name, value);
        }
        launch
    }

    /// pidvisor with `command` as its only work (no service, no init script), run to its end.
    pub fn run_main_alone(&self, env: &[(&str, &str)], command: &[&str]) -> Run {
        let mut args = vec!["--"];
        args.extend_from_slice(command);
        self.launch(env, &args).start().finish(PATIENCE)
    }

    pub fn start(&self, env: &[(&str, &str)], args: &[&str]) -> Pidvisor {
        let mut pidvisor = self.launch(env, args).start();
        let socket = self.path("control.sock");
        pidvisor.wait_until("the control socket answers", |_| {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        pidvisor
    }

    fn search_path(&self) -> String {
        format!(
            "{}:{}",
            self.path("bin"),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Runs `bin/TOOL ARGS` as a script in the container would (pidvisor's socket and
    /// s6 folder in its environment).
    pub fn run(&self, tool: &str, args: &[&str]) -> Output {
        let mut command = Command::new(self.bin(tool));
        command.args(args);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PIDVISOR_") {
                command.env_remove(name);
            }
        }
        command
            .env("PIDVISOR_SOCKET", self.path("control.sock"))
            .env("PIDVISOR_S6_DIR", self.path("s6"))
            .env("PATH", self.search_path())
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"))
    }
}

/// Exit code, stdout and stderr of a run, for assertions and their messages.
pub fn outcome(output: &Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `id -u/-g/-G USER` on this machine, to compare with what s6-setuidgid gave.
pub fn id_of(user: &str, flag: &str) -> String {
    let output = Command::new("id").args([flag, user]).output().expect("id");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
