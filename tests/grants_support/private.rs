//! MariaDB servers of a test's own (own datadir, port, tmpdir), for what must not touch the
//! shared stand-in: TLS with `require_secure_transport`, held locks on the grant tables, a
//! primary/replica pair. Started with `mariadb-install-db` and `mariadbd` as
//! tests/lifecycle_reconcile.rs does; killed and removed on drop, also when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{suffix, Server};

pub const ROOT_PASSWORD: &str = "private-root";

/// How a private server is started.
#[derive(Default)]
pub struct Options {
    /// Serve TLS with this CA / certificate / key, and refuse logins without TLS.
    pub tls: Option<Certs>,
    /// Write a binary log under this server id (a primary), or replicate (a replica).
    pub server_id: Option<u32>,
    /// Log connections and statements with the server_audit plugin, as Aurora's audit log does
    /// (to [`PrivateMariadb::audit_log`]).
    pub server_audit: bool,
    /// Listen on this address too (e.g. the test-host bridge, for logins from a bastion's address).
    pub also_bind: Option<String>,
}

/// A CA and a server certificate for 127.0.0.1 and localhost, made with openssl.
#[derive(Clone)]
pub struct Certs {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    /// A fresh CA (`name`) and a server certificate it signed.
    pub fn make(dir: &Path, name: &str) -> Certs {
        std::fs::create_dir_all(dir).unwrap();
        let p = |f: &str| dir.join(format!("{name}-{f}"));
        let (ca_key, ca, key, csr, cert, ext) = (p("ca.key"), p("ca.pem"), p("server.key"), p("server.csr"), p("server.pem"), p("ext.cnf"));
        std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
        let subject = format!("/CN=powerpole test CA {name}");
        let steps: Vec<Vec<&str>> = vec![
            vec!["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject.as_str(), "-keyout", s(&ca_key), "-out", s(&ca)],
            vec!["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", s(&key), "-out", s(&csr)],
            vec!["x509", "-req", "-in", s(&csr), "-CA", s(&ca), "-CAkey", s(&ca_key), "-CAcreateserial", "-days", "2", "-extfile", s(&ext), "-out", s(&cert)],
        ];
        for args in steps {
            let out = Command::new("openssl").args(&args).output().expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Certs { dir: dir.to_path_buf(), ca, cert, key }
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// A running private MariaDB.
pub struct PrivateMariadb {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
    socket: PathBuf,
}

impl PrivateMariadb {
    /// Starts a server and gives root@127.0.0.1 the password [`ROOT_PASSWORD`].
    pub fn start(options: Options) -> PrivateMariadb {
        let dir = std::env::temp_dir().join(format!("powerpole-grants-{}", suffix()));
        let (data, run, tmp) = (dir.join("data"), dir.join("run"), dir.join("tmp"));
        for d in [&data, &run, &tmp] {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut tls_args = Vec::new();
        if let Some(certs) = &options.tls {
            // mariadbd runs as mysql and must read its key: a copy inside its own directory.
            let own = dir.join("tls");
            std::fs::create_dir_all(&own).unwrap();
            for (from, to) in [(&certs.ca, "ca.pem"), (&certs.cert, "server.pem"), (&certs.key, "server.key")] {
                std::fs::copy(from, own.join(to)).unwrap();
            }
            tls_args = vec![
                format!("--ssl-ca={}", own.join("ca.pem").display()),
                format!("--ssl-cert={}", own.join("server.pem").display()),
                format!("--ssl-key={}", own.join("server.key").display()),
                "--require-secure-transport=ON".to_string(),
            ];
        }
        // mariadbd drops to the mysql user and dies silently if it cannot write here.
        let chown = Command::new("chown").args(["-R", "mysql:mysql"]).arg(&dir).status().expect("chown");
        assert!(chown.success());
        let install = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=mysql", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .env("TMPDIR", &tmp)
            .output()
            .expect("mariadb-install-db runs");
        assert!(install.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&install.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let socket = run.join("mysqld.sock");
        let mut cmd = Command::new("mariadbd");
        let bind = match &options.also_bind {
            Some(other) => format!("--bind-address=127.0.0.1,{other}"),
            None => "--bind-address=127.0.0.1".to_string(),
        };
        cmd.args(["--no-defaults", "--user=mysql", "--skip-name-resolve"])
            .arg(bind)
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", run.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", run.join("error.log").display()))
            .args(&tls_args);
        if options.server_audit {
            cmd.args(["--plugin-load-add=server_audit", "--server-audit-logging=ON", "--server-audit-events=CONNECT,QUERY"])
                .arg(format!("--server-audit-file-path={}", run.join("audit.log").display()));
        }
        if let Some(id) = options.server_id {
            cmd.arg(format!("--server-id={id}")).arg(format!("--log-bin={}", data.join("binlog").display())).arg("--binlog-format=ROW");
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("mariadbd starts");
        let server = PrivateMariadb { child, dir, port, socket };
        let sql = format!(
            "CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '{ROOT_PASSWORD}'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
        );
        let started = Instant::now();
        loop {
            if server.socket_sql(&sql).is_ok() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the private MariaDB did not start; see {}", run.join("error.log").display());
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// Where server_audit writes (with [`Options::server_audit`]).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("run").join("audit.log")
    }

    /// Root's login over TCP.
    pub fn server(&self) -> Server {
        Server { host: "127.0.0.1".into(), port: self.port, user: "root".into(), password: ROOT_PASSWORD.into() }
    }

    /// Runs SQL as root over the Unix socket (no TLS needed there); stdout on success.
    pub fn socket_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-u", "root", "-N", "-B", "-e", sql])
            .arg(format!("--socket={}", self.socket.display()))
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Makes this server a replica of `primary` from the primary's current binary log position.
    pub fn replicate_from(&self, primary: &PrivateMariadb) {
        let status = primary.socket_sql("SHOW MASTER STATUS").expect("SHOW MASTER STATUS");
        let mut fields = status.split_whitespace();
        let (file, pos) = (fields.next().expect("a binlog file"), fields.next().expect("a binlog position"));
        let sql = format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='{ROOT_PASSWORD}', MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos}, MASTER_USE_GTID=no; START SLAVE;",
            primary.port
        );
        self.socket_sql(&sql).expect("the replica starts replicating");
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
