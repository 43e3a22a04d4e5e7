//! What the reconcile tests share: a MariaDB server of a test's own (reconcile looks at *every*
//! account of its deployment on the server, and the shared stand-in holds other tests' accounts),
//! and a session provisioned the way people get one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use powerpole::app::App;
use powerpole::domain::SessionId;
use powerpole::workflow::StepOutcome;

use super::process::wait_until;
use super::{session_on_card, suffix, Options, World, ALICE, BOB, SOON};

/// A MariaDB server of the test's own, on a free loopback port.
pub struct PrivateMariadb {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

pub const ROOT_PASSWORD: &str = "private-root";

impl PrivateMariadb {
    pub async fn start() -> PrivateMariadb {
        let dir = std::env::temp_dir().join(format!("powerpole-mariadb-{}", suffix()));
        let (data, run, tmp) = (dir.join("data"), dir.join("run"), dir.join("tmp"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        // Its own temporary directory: two bootstraps sharing /tmp collide on temporary tables.
        std::fs::create_dir_all(&tmp).unwrap();
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
        let child = Command::new("mariadbd")
            .args(["--no-defaults", "--user=mysql", "--bind-address=127.0.0.1", "--skip-name-resolve"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", run.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", run.join("error.log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let server = PrivateMariadb { child, dir, port };
        let sql = format!(
            "CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '{ROOT_PASSWORD}'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
        );
        let ready = wait_until(Duration::from_secs(20), || {
            let ok = Command::new("mariadb")
                .args(["--no-defaults", "-u", "root", "-e", &sql])
                .arg(format!("--socket={}", socket.display()))
                .output()
                .is_ok_and(|o| o.status.success());
            async move { ok.then_some(()) }
        })
        .await;
        assert!(ready.is_some(), "the private MariaDB did not start; see {}", run.join("error.log").display());
        server
    }

    pub fn url(&self) -> String {
        format!("mysql://root:{ROOT_PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// Every account that is not the server's own, as `(user, host)`, sorted.
    pub async fn accounts(&self) -> Vec<(String, String)> {
        let mut conn = mysql_async::Conn::from_url(self.url().as_str()).await.expect("connect to the private MariaDB");
        conn.query("SELECT User, Host FROM mysql.user WHERE is_role = 'N' AND User NOT IN ('root', 'mysql', 'mariadb.sys', '') ORDER BY User, Host").await.expect("mysql.user")
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A world in `region` whose target's admin logs in to a MariaDB server of its own.
pub async fn isolated_world(region: &str) -> (World, PrivateMariadb) {
    // The server starts on another worker thread (its start runs blocking commands).
    let db = tokio::spawn(PrivateMariadb::start());
    let world = World::new_in_region(Options::default(), region).await;
    let db = db.await.expect("the private MariaDB starts");
    world.point_admin_secret_with("127.0.0.1", db.port, "root", ROOT_PASSWORD).await;
    (world, db)
}


/// EC2's state name of instance `id`.
pub async fn instance_state(world: &World, id: &str) -> String {
    let answer = world.ec2.describe_instances().instance_ids(id).send().await.expect("DescribeInstances");
    let instance = answer.reservations().iter().flat_map(|r| r.instances()).next().cloned().expect("the instance");
    instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default()
}

/// Alice requests `target` for 1h, Bob approves, and one tick provisions it.
pub async fn provisioned(world: &World, app: &App, target: &str) -> SessionId {
    let http = world.serve(app).await;
    let reply = http.command(ALICE, &format!("request {target} READ 1h INC-200 reconcile")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");
    let report = app.lifecycle.tick(chrono::Duration::seconds(15)).await.expect("sweep");
    let outcomes: Vec<_> = report.acted().map(|(_, o)| o.clone()).collect();
    assert_eq!(outcomes, vec![Ok(StepOutcome::HandedOver)]);
    id
}

