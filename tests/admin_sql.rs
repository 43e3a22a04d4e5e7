//! `powerpole db admin-sql`, used as an operator would: run its SQL as the master user, store the
//! password it printed in the admin secret, then `doctor` passes and a whole session (hand-over,
//! a live connection killed at expiry, the account dropped) works with that account alone.

mod world;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};
use mysql_async::prelude::Queryable;

use powerpole::domain::{Outcome, State};
use powerpole::workflow::{ManualClock, StepOutcome};
use world::{session_on_card, Options, TestHost, World, ALICE, APPROVALS, BOB, SOON};

struct DropAdmin(world::Db, String);

impl Drop for DropAdmin {
    fn drop(&mut self) {
        let (db, user) = (self.0.clone(), self.1.clone());
        // Drop runs outside the test's runtime; a small one of its own does the cleanup.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(async { db.root().await.query_drop(format!("DROP USER IF EXISTS '{user}'@'127.0.0.1'")).await.ok() });
            }
        })
        .join();
    }
}

fn statements(sql: &str) -> Vec<String> {
    sql.lines().filter(|l| !l.starts_with("--") && !l.trim().is_empty()).map(|l| l.trim_end_matches(';').to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_admin_account_is_enough_for_doctor_and_a_whole_session() {
    let world = World::new(Options::default()).await;
    let dir = std::env::temp_dir().join(format!("powerpole-admin-sql-{}", world.id));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let config = dir.join("powerpole.toml");
    std::fs::write(&config, world.config_text()).expect("write the config");
    let secret_file = dir.join("admin-secret.json");
    let admin = format!("ppadmin_{}", world.id);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_powerpole"))
        .args(["db", "admin-sql", "--target", "billing", "--admin-user", &admin, "--admin-host", "127.0.0.1", "--config"])
        .arg(&config)
        .arg("--secret-file")
        .arg(&secret_file)
        .envs(world.process_env())
        .output()
        .expect("run powerpole db admin-sql");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sql = String::from_utf8(out.stdout).expect("SQL is text");
    let _cleanup = DropAdmin(world.db.clone(), admin.clone());

    // As the master user. Over TCP as the URL says: mysql_async would otherwise switch to the
    // Unix socket, where `root` is another account (root@localhost) that did not create the
    // shared server's marker role and so may not hand it on WITH ADMIN OPTION.
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&world.db.url).expect("the MariaDB URL")).prefer_socket(false);
    let mut root = mysql_async::Conn::new(opts).await.expect("connect as root");
    for statement in statements(&sql) {
        root.query_drop(&statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let grants: Vec<String> = root.query(format!("SHOW GRANTS FOR '{admin}'@'127.0.0.1'")).await.expect("the admin's grants");
    assert!(!grants.iter().any(|g| g.contains("ALL PRIVILEGES") || g.contains("SUPER")), "{grants:?}");

    // The secret file holds what the secret must; mode 0600.
    let secret: serde_json::Value = serde_json::from_slice(&std::fs::read(&secret_file).expect("the secret file")).expect("JSON");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&secret_file).expect("metadata").permissions().mode() & 0o777, 0o600);
    }
    let password = secret["password"].as_str().expect("a password");
    assert!(sql.contains(password), "the SQL sets the password the secret holds");
    world.point_admin_secret_with("127.0.0.1", world.db.port, &admin, password).await;

    let doctor = std::process::Command::new(env!("CARGO_BIN_EXE_powerpole")).args(["doctor", "--config"]).arg(&config).envs(world.process_env()).output().expect("run doctor");
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(0), "{report}");
    assert!(report.contains(&format!("ok    target billing: database: admin {admin}@127.0.0.1")), "{report}");

    // Without PROCESS a revocation could not see the account's sessions: doctor says so, by name.
    root.query_drop(format!("REVOKE PROCESS ON *.* FROM '{admin}'@'127.0.0.1'")).await.expect("revoke PROCESS");
    let doctor = std::process::Command::new(env!("CARGO_BIN_EXE_powerpole")).args(["doctor", "--config"]).arg(&config).envs(world.process_env()).output().expect("run doctor");
    let lacking = String::from_utf8_lossy(&doctor.stdout);
    assert_ne!(doctor.status.code(), Some(0), "{lacking}");
    assert!(lacking.contains("lacks PROCESS"), "{lacking}");
    root.query_drop(format!("GRANT PROCESS ON *.* TO '{admin}'@'127.0.0.1'")).await.expect("grant PROCESS again");

    // A whole session with that account.
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = world.app(clock.clone()).await;
    let http = world.serve(&app).await;
    let reply = http.command(ALICE, "request billing READ 1h INC-7 admin account").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cards = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the card");
    let card = cards.iter().find(|c| c.param_str("channel") == Some(APPROVALS)).expect("a card").clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    let before = world.slack.calls_to("chat.update").len();
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", before + 1, SOON).await.expect("the decision");

    let report = app.lifecycle.tick(Duration::seconds(15)).await.expect("sweep");
    assert_eq!(outcomes(&report), vec![StepOutcome::HandedOver]);
    let session = world.session(&app, &id).await;
    let ip = session.private_ip.clone().expect("a private IP");
    assert_eq!(world.accounts_named(&world.db_user()).await, vec![(world.db_user(), ip.clone())]);

    // Alice is connected when the session expires: the admin account may kill her connection.
    let dm = world.dms_to(ALICE).into_iter().find(|c| c.text().contains("is ready")).expect("the hand-over DM");
    let dm_text = powerpole_standins::slack::text_of(&dm);
    let password = world::password_in(&dm_text).expect("the DM carries the password");
    let mysql = world::mysql_line_in(&dm_text).expect("a mysql line");
    // The line prompts for the password; the test types it as a person would paste it.
    let mysql = world::typing_password(&mysql, &password);
    let bastion = TestHost::add(&ip);
    let user = world.db_user();
    let long_query = std::thread::spawn(move || bastion.mysql(&mysql, "SELECT SLEEP(60)"));
    let connected = async {
        loop {
            let n: Option<u64> = root.exec_first("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", (user.as_str(),)).await.expect("processlist");
            if n.unwrap_or(0) > 0 {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(SOON, connected).await.expect("alice's connection shows up");

    clock.set(t0 + Duration::hours(1) + Duration::minutes(1));
    let report = app.lifecycle.tick(Duration::seconds(15)).await.expect("sweep");
    assert!(outcomes(&report).contains(&StepOutcome::TornDown), "{:?}", outcomes(&report));
    assert_eq!(world.session(&app, &id).await.state, State::Closed(Outcome::Expired));
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "the account is dropped");
    let ended = tokio::task::spawn_blocking(move || long_query.join().expect("the client thread")).await.expect("join");
    assert!(ended.is_err(), "the open connection was killed, not left running: {ended:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn outcomes(report: &powerpole::workflow::TickReport) -> Vec<StepOutcome> {
    report.acted().map(|(id, o)| o.clone().unwrap_or_else(|e| panic!("step for {id} failed: {e}"))).collect()
}
