//! `powerpole reconcile` (the real binary): what it finds, that `--dry-run` changes nothing, and
//! that the real run removes what should not exist and nothing that should.
//!
//! Reconcile looks at *every* powerpole bastion in the region and every powerpole account on the
//! database server, so these tests cannot share them with the other tests running at the same
//! time: each has a region of its own in moto and a MariaDB server of its own (started for the
//! test, removed after it).

mod world;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mysql_async::prelude::Queryable;

use powerpole::app::App;
use powerpole::bastion::LaunchSpec;
use powerpole::domain::{DbUsername, Outcome, Role, SessionId, SlackUserId, State, TargetName};
use powerpole::grants::AccountRequest;
use powerpole::workflow::{ManualClock, StepOutcome, SystemClock};
use world::process::{run_command, wait_until};
use world::{session_on_card, suffix, Options, World, ALICE, BOB, SOON};

/// A MariaDB server of the test's own, on a free loopback port.
struct PrivateMariadb {
    child: Child,
    dir: PathBuf,
    port: u16,
}

const ROOT_PASSWORD: &str = "private-root";

impl PrivateMariadb {
    async fn start() -> PrivateMariadb {
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

    fn url(&self) -> String {
        format!("mysql://root:{ROOT_PASSWORD}@127.0.0.1:{}", self.port)
    }

    async fn accounts(&self) -> Vec<(String, String)> {
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
async fn isolated_world(region: &str) -> (World, PrivateMariadb) {
    // The server starts on another worker thread (its start runs blocking commands).
    let db = tokio::spawn(PrivateMariadb::start());
    let world = World::new_in_region(Options::default(), region).await;
    let db = db.await.expect("the private MariaDB starts");
    world.point_admin_secret_with("127.0.0.1", db.port, "root", ROOT_PASSWORD).await;
    (world, db)
}

async fn instance_state(world: &World, id: &str) -> String {
    let answer = world.ec2.describe_instances().instance_ids(id).send().await.expect("DescribeInstances");
    let instance = answer.reservations().iter().flat_map(|r| r.instances()).next().cloned().expect("the instance");
    instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default()
}

/// Alice requests `target` for 1h, Bob approves, and one tick provisions it.
async fn provisioned(world: &World, app: &App, target: &str) -> SessionId {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_dry_run_reports_a_stray_bastion_a_stray_account_and_an_overdue_session_and_the_real_run_removes_them() {
    let (world, db) = isolated_world("ap-northeast-3").await;
    // An active session whose expiry passed two hours ago, with nothing running to notice.
    let app = world.app(Arc::new(ManualClock::new(Utc::now() - chrono::Duration::hours(3)))).await;
    let overdue = provisioned(&world, &app, "billing").await;
    let session = world.session(&app, &overdue).await;
    let (own_instance, own_ip) = (session.instance_id.clone().unwrap(), session.private_ip.clone().unwrap());
    // A bastion for a session nobody knows, and an account with powerpole's marker no session owns.
    let target = app.config.target(&TargetName::parse("billing").unwrap()).unwrap().clone();
    let ghost = SessionId::random();
    let stray = app.lifecycle.bastions.launch(&LaunchSpec::new(ghost.clone(), SlackUserId::parse(ALICE).unwrap(), "alice@example.com", &target)).await.expect("launch a stray");
    let stray_user = format!("stray{}", world.id);
    let request = AccountRequest { user: DbUsername::parse(&stray_user).unwrap(), host: "10.200.77.7".into(), role: Role::Read };
    app.lifecycle.grants.create_account(&target, &request).await.expect("create a stray account");
    let alice = (world.db_user(), own_ip.clone());
    let stray_account = (stray_user.clone(), "10.200.77.7".to_string());
    assert_eq!(db.accounts().await, vec![alice.clone(), stray_account.clone()]);

    // Dry run: all three reported, nothing changed.
    let (code, out, err) = run_command(&world, &["reconcile", "--dry-run"], &world.config_text(), &[]).await;
    println!("{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    let line = |words: &[&str]| out.lines().find(|l| words.iter().all(|w| l.contains(w))).map(str::to_owned);
    assert!(line(&["found", &stray.id, ghost.as_str(), "closed or unknown"]).is_some(), "the stray bastion: {out}");
    assert!(line(&["found", &format!("'{stray_user}'@'10.200.77.7'"), "no live session owns it"]).is_some(), "the stray account: {out}");
    assert!(line(&["found", overdue.as_str(), "active", "overdue"]).is_some(), "the overdue session: {out}");
    assert!(line(&[&own_instance]).is_none() && line(&[&world.db_user()]).is_none(), "the live session's bastion and account are not strays: {out}");
    assert!(out.contains("dry run: nothing changed"), "{out}");
    assert_eq!(instance_state(&world, &stray.id).await, "running");
    assert_eq!(instance_state(&world, &own_instance).await, "running");
    assert_eq!(db.accounts().await, vec![alice.clone(), stray_account.clone()]);
    assert_eq!(world.session(&app, &overdue).await.state, State::Active);

    // The real run: the strays are removed, the overdue session is expired and torn down.
    let (code, out, err) = run_command(&world, &["reconcile"], &world.config_text(), &[]).await;
    println!("{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    let line = |words: &[&str]| out.lines().find(|l| words.iter().all(|w| l.contains(w))).map(str::to_owned);
    assert!(line(&["fixed", &stray.id, "terminated"]).is_some(), "{out}");
    assert!(line(&["fixed", &stray_user, "dropped"]).is_some(), "{out}");
    assert!(line(&["fixed", overdue.as_str(), "TornDown"]).is_some(), "{out}");
    assert_eq!(instance_state(&world, &stray.id).await, "terminated");
    assert_eq!(instance_state(&world, &own_instance).await, "terminated");
    assert!(db.accounts().await.is_empty(), "no account is left: {:?}", db.accounts().await);
    assert_eq!(world.session(&app, &overdue).await.state, State::Closed(Outcome::Expired));
    assert!(world.dms_to(ALICE).iter().any(|c| c.text().contains("has ended")), "the requester is told");
    let managed = app.lifecycle.bastions.list_managed().await.expect("list bastions");
    assert!(managed.is_empty(), "no powerpole bastion is left in the region: {managed:?}");

    // A second pass finds nothing.
    let (code, out, _) = run_command(&world, &["reconcile", "--dry-run"], &world.config_text(), &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains("reconcile: 0 finding(s)"), "{out}");
}

/// Two targets on one database server (two schemas of one cluster): a live session's account on
/// one of them is not a stray when the other target's accounts are listed, and a real stray on
/// that server is reported (and removed) once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_spares_a_live_sessions_account_on_another_target_of_the_same_server() {
    let (world, db) = isolated_world("eu-central-2").await;
    let base = world.config_text();
    let at = base.find("[targets.billing]").expect("the billing target");
    let config = format!("{base}\n{}", base[at..].replace("[targets.billing]", "[targets.payments]"));
    let app = world.app_with(&config, Arc::new(SystemClock)).await;
    let live = provisioned(&world, &app, "payments").await;
    let ip = world.session(&app, &live).await.private_ip.unwrap();
    let target = app.config.target(&TargetName::parse("billing").unwrap()).unwrap().clone();
    let stray_user = format!("stray{}", world.id);
    let request = AccountRequest { user: DbUsername::parse(&stray_user).unwrap(), host: "10.200.77.8".into(), role: Role::Read };
    app.lifecycle.grants.create_account(&target, &request).await.expect("create a stray account");

    let (code, out, err) = run_command(&world, &["reconcile", "--dry-run"], &config, &[]).await;
    println!("{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains(&world.db_user()), "the live session's account is not a stray: {out}");
    assert_eq!(out.lines().filter(|l| l.contains(&stray_user)).count(), 1, "the stray is reported once: {out}");

    let (code, out, err) = run_command(&world, &["reconcile"], &config, &[]).await;
    println!("{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(db.accounts().await, vec![(world.db_user(), ip)], "the live account stays, the stray is gone");
    assert_eq!(world.session(&app, &live).await.state, State::Active);
}
