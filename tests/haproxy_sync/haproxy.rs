//! A real HAProxy for one test: its own temp dir, config with the `haproxy-sync` markers,
//! admin socket, and a frontend on a free loopback port; killed when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);

/// Where the handler finds HAProxy: enough to run it from another thread.
#[derive(Clone)]
pub struct Paths {
    pub socket: PathBuf,
    pub config: PathBuf,
}

pub struct HaProxy {
    pub paths: Paths,
    dir: PathBuf,
    frontend: SocketAddr,
    child: Child,
}

impl HaProxy {
    pub fn start() -> HaProxy {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("haproxy-sync-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let frontend = free_port();
        let paths = Paths {
            socket: dir.join("admin.sock"),
            config: dir.join("haproxy.cfg"),
        };
        let config = format!(
            "global\n    stats socket {} mode 600 level admin\n\
             defaults\n    mode http\n    timeout connect 500ms\n    timeout client 30s\n    timeout server 30s\n\
             \x20   retries 3\n    option redispatch 1\n\
             frontend fe\n    bind {frontend}\n    default_backend web\n\
             backend web\n    balance roundrobin\n    option httpchk GET /health\n\
             \x20   # haproxy-sync: begin (generated: do not edit)\n    # haproxy-sync: end\n",
            paths.socket.display()
        );
        std::fs::write(&paths.config, config).expect("config written");
        let child = spawn(&paths);
        let haproxy = HaProxy {
            paths,
            dir,
            frontend,
            child,
        };
        haproxy.wait_until_answering();
        haproxy
    }

    /// Kills this HAProxy and starts another from the same (rewritten) config file.
    pub fn restart(mut self) -> HaProxy {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.paths.socket);
        self.child = spawn(&self.paths);
        self.wait_until_answering();
        self
    }

    pub fn frontend(&self) -> SocketAddr {
        self.frontend
    }

    fn command(&self, command: &str) -> String {
        let mut stream = UnixStream::connect(&self.paths.socket).expect("admin socket");
        stream
            .write_all(format!("{command}\n").as_bytes())
            .expect("command sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer read");
        answer
    }

    /// Rows of `show servers state web`, as (name, op_state, admin_state).
    fn servers(&self) -> Vec<(String, u32, u32)> {
        let answer = self.command("show servers state web");
        answer
            .lines()
            .skip(2)
            .filter_map(|row| {
                let f: Vec<&str> = row.split_whitespace().collect();
                Some((
                    f.get(3)?.to_string(),
                    f.get(5)?.parse().ok()?,
                    f.get(6)?.parse().ok()?,
                ))
            })
            .collect()
    }

    pub fn server_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.servers().into_iter().map(|s| s.0).collect();
        names.sort();
        names
    }

    /// Until HAProxy counts `name` as running (op_state 2).
    pub fn wait_until_up(&self, name: &str) {
        self.wait_until(&format!("{name} is up"), |s| {
            s.iter().any(|(n, op, _)| n == name && *op == 2)
        });
    }

    /// Until `name` has `count` sessions (`scur` of `show stat`), connecting ones included.
    pub fn wait_until_sessions(&self, name: &str, count: u32) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stat = self.command("show stat");
            let sessions = stat.lines().find_map(|row| {
                let f: Vec<&str> = row.split(',').collect();
                (f.first() == Some(&"web") && f.get(1) == Some(&name))
                    .then(|| f.get(4)?.parse::<u32>().ok())
                    .flatten()
            });
            if sessions == Some(count) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {name} has {count} sessions: {sessions:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Until `name` is in drain (admin state bit 0x08, forced drain).
    pub fn wait_until_draining(&self, name: &str) {
        self.wait_until(&format!("{name} drains"), |s| {
            s.iter().any(|(n, _, admin)| n == name && admin & 0x08 != 0)
        });
    }

    fn wait_until(&self, what: &str, done: impl Fn(&[(String, u32, u32)]) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let servers = self.servers();
            if done(&servers) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}: {servers:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_until_answering(&self) {
        let deadline = Instant::now() + PATIENCE;
        while UnixStream::connect(&self.paths.socket).is_err()
            || TcpStream::connect(self.frontend).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "HAProxy did not start: {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A request through the load balancer; its body.
    pub fn get(&self, path: &str) -> String {
        get(self.frontend, path)
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(paths: &Paths) -> Child {
    Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&paths.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(paths.config.with_extension("log")).expect("log file"))
        .spawn()
        .expect("haproxy starts")
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("bound")
}

/// GET `path` from `address`; the body of a 200 answer (anything else fails the test).
pub fn get(address: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("the load balancer accepts");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("timeout set");
    let request = format!("GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "GET {path}: {response}"
    );
    response.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}
