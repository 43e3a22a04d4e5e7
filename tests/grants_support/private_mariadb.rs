//! A MariaDB of the test's own, bound to addresses the test chooses (the shared stand-in is
//! bound to 127.0.0.1 only, and restarting it would break other engineers' tests). Data and run
//! directories live under `.local/` of this worktree and are removed on drop, with the server.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{suffix, Server};

const ROOT_PASSWORD: &str = "powerpole-private-root";

/// A running private MariaDB; stopped and deleted on drop.
pub struct PrivateMariadb {
    pub server: Server,
    child: Option<Child>,
    dir: PathBuf,
}

impl PrivateMariadb {
    /// Initialises a data directory and starts `mariadbd` bound to `bind` (and nothing else),
    /// with `--skip-name-resolve` as on the shared stand-in, so that accounts match addresses.
    pub fn start(bind: &[Ipv4Addr]) -> PrivateMariadb {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".local").join(format!("grants-mariadb-{}", suffix()));
        let (data, run) = (dir.join("data"), dir.join("run"));
        std::fs::create_dir_all(&data).expect("create the data directory");
        std::fs::create_dir_all(&run).expect("create the run directory");
        // mariadbd drops to the mysql user and dies silently on the socket if it cannot write.
        must(Command::new("chown").args(["-R", "mysql:mysql"]).arg(&dir), "chown the directories to mysql");
        let mut this = PrivateMariadb { server: Server { host: "127.0.0.1".into(), port: free_port(), user: "root".into(), password: ROOT_PASSWORD.into() }, child: None, dir };
        must(
            Command::new("mariadb-install-db")
                .args(["--no-defaults", "--user=mysql", "--auth-root-authentication-method=normal", "--skip-test-db"])
                .arg(format!("--datadir={}", data.display())),
            "mariadb-install-db",
        );
        let bind_list = bind.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        let socket = run.join("mysqld.sock");
        let child = Command::new("mariadbd")
            .args(["--no-defaults", "--user=mysql", "--skip-name-resolve", "--skip-log-bin"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={}", this.server.port))
            .arg(format!("--bind-address={bind_list}"))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", run.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", run.join("error.log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        this.child = Some(child);
        this.set_root_password(&socket);
        this
    }

    /// Waits for the socket to answer, then gives root a password over TCP from 127.0.0.1.
    fn set_root_password(&mut self, socket: &std::path::Path) {
        let client = || {
            let mut c = Command::new("mariadb");
            c.args(["--no-defaults", "-u", "root"]).arg(format!("--socket={}", socket.display()));
            c
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !client().args(["-e", "SELECT 1"]).output().is_ok_and(|o| o.status.success()) {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("mariadbd exited with {status}; see {}", self.dir.join("run/error.log").display());
            }
            assert!(Instant::now() < deadline, "mariadbd did not answer within 30 s; see {}", self.dir.join("run/error.log").display());
            // Waiting for another process to finish starting: there is nothing to be notified by.
            std::thread::sleep(Duration::from_millis(50));
        }
        let sql = format!(
            "ALTER USER 'root'@'localhost' IDENTIFIED BY '{ROOT_PASSWORD}'; \
             CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '{ROOT_PASSWORD}'; \
             GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
        );
        must(client().args(["-e", &sql]), "setting root's password");
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).output();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn must(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what} could not run: {e}"));
    assert!(out.status.success(), "{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("its address").port()
}
