//! A real collector: Debian's rsyslogd, started by the test on a loopback port with a
//! config of its own (`imtcp` only: no imuxsock, no imklog, nothing outside the temp dir),
//! writing one file per sending host: `TIMESTAMP HOSTNAME APP-NAME PROCID MSG`.
//!
//! - `maxMessageSize` is 128 KiB (rsyslog's default is 8 KiB): logfwd sends lines of up
//!   to `--max-line` (64 KiB) plus the header whole, and a collector must take them.
//! - `queue.timeoutShutdown` is 10 s: at SIGTERM rsyslog writes every message it has
//!   read before it exits (by default it gives up after 1.5 s and discards the rest,
//!   which would count as lines lost across a restart that are not logfwd's doing).
//!
//! Ready means its port accepts a connection (tried until a deadline); stopped means
//! SIGTERM and the process has exited.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::{PATIENCE, wait_until};

pub struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    /// Starts rsyslogd on `127.0.0.1:port` with its files under `dir`, and waits until
    /// its port accepts connections.
    pub fn start(dir: &Path, port: u16) -> Rsyslog {
        let out = dir.join("out");
        fs::create_dir_all(&out).expect("create the collector's output dir");
        let config = format!(
            r#"global(workDirectory="{dir}" maxMessageSize="128k")
main_queue(queue.timeoutShutdown="10000")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="line" type="string"
         string="%TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSG%\n")
template(name="per-host" type="string" string="{out}/%HOSTNAME%.log")
action(type="omfile" dynaFile="per-host" template="line")
"#,
            dir = dir.display(),
            out = out.display(),
        );
        let conf = dir.join("rsyslog.conf");
        fs::write(&conf, config).expect("write rsyslog.conf");
        let log = fs::File::create(dir.join("rsyslogd.log")).expect("create rsyslogd.log");
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup rsyslogd.log"))
            .stderr(log)
            .spawn()
            .expect("start rsyslogd (apt-get install rsyslog)");
        let mut collector = Rsyslog {
            dir: dir.to_path_buf(),
            port,
            child: Some(child),
        };
        collector.wait_ready();
        collector
    }

    fn wait_ready(&mut self) {
        let port = self.port;
        let child = self.child.as_mut().expect("started");
        wait_until(PATIENCE, "rsyslogd accepts connections", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("rsyslogd exited at start ({status}); see its log in the temp dir");
            }
            TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| e.to_string())
        });
    }

    /// SIGTERM, then waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
                .expect("SIGTERM rsyslogd");
            child.wait().expect("wait for rsyslogd");
        }
    }

    /// The messages received from `host`, one `TIMESTAMP HOSTNAME APP PROCID MSG` string
    /// per line (bytes that are not UTF-8 shown as U+FFFD).
    pub fn records(&self, host: &str) -> Vec<String> {
        match fs::read(self.dir.join("out").join(format!("{host}.log"))) {
            Ok(bytes) => String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The MSG parts only.
    pub fn messages(&self, host: &str) -> Vec<String> {
        self.records(host)
            .iter()
            .map(|r| r.splitn(5, ' ').nth(4).unwrap_or("").to_string())
            .collect()
    }

    /// The raw bytes of `host`'s file.
    pub fn raw(&self, host: &str) -> Vec<u8> {
        fs::read(self.dir.join("out").join(format!("{host}.log"))).unwrap_or_default()
    }

    /// Waits until `host`'s file has at least `count` lines; returns the MSG parts.
    pub fn wait_for_messages(&self, host: &str, count: usize) -> Vec<String> {
        wait_until(
            PATIENCE,
            &format!("the collector has {count} messages from {host}"),
            || {
                let messages = self.messages(host);
                if messages.len() >= count {
                    Ok(messages)
                } else {
                    Err(format!("{} messages", messages.len()))
                }
            },
        )
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
