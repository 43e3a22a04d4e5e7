//! `powerpole reconcile` (the real binary): what it finds, that `--dry-run` changes nothing, and
//! that the real run removes what should not exist and nothing that should.
//!
//! Reconcile looks at *every* powerpole bastion in the region and every powerpole account on the
//! database server, so these tests cannot share them with the other tests running at the same
//! time: each has a region of its own in moto and a MariaDB server of its own (started for the
//! test, removed after it).

mod world;

use std::sync::Arc;

use chrono::Utc;
use powerpole::bastion::LaunchSpec;
use powerpole::domain::{DbUsername, Outcome, Role, SessionId, SlackUserId, State, TargetName};
use powerpole::grants::AccountRequest;
use powerpole::workflow::{ManualClock, SystemClock};
use world::reconcile::{isolated_world, instance_state, provisioned};
use world::process::run_command;
use world::{ALICE, World};

/// The world's configuration with no grace for young bastions.
fn no_grace(world: &World) -> String {
    world.config_text().replacen("[scheduler]\n", "[scheduler]\nreconcile_grace = \"0s\"\n", 1)
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
    let request = AccountRequest { earlier_attempt: false, user: DbUsername::parse(&stray_user).unwrap(), host: "10.200.77.7".into(), role: Role::Read };
    app.lifecycle.grants.create_account(&target, &request).await.expect("create a stray account");
    let alice = (world.db_user(), own_ip.clone());
    let stray_account = (stray_user.clone(), "10.200.77.7".to_string());
    assert_eq!(db.accounts().await, vec![alice.clone(), stray_account.clone()]);

    // Dry run: all three reported, nothing changed. (No grace for young bastions: the stray was
    // launched a moment ago; tests/reconcile_deployments.rs shows the grace.)
    let config = no_grace(&world);
    let (code, out, err) = run_command(&world, &["reconcile", "--dry-run"], &config, &[]).await;
    println!("{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    let line = |words: &[&str]| out.lines().find(|l| words.iter().all(|w| l.contains(w))).map(str::to_owned);
    assert!(line(&["found", &stray.id, ghost.as_str(), "its session is unknown"]).is_some(), "the stray bastion: {out}");
    assert!(line(&["found", &format!("'{stray_user}'@'10.200.77.7'"), "no live session owns it"]).is_some(), "the stray account: {out}");
    assert!(line(&["found", overdue.as_str(), "active", "overdue"]).is_some(), "the overdue session: {out}");
    assert!(line(&[&own_instance]).is_none() && line(&[&world.db_user()]).is_none(), "the live session's bastion and account are not strays: {out}");
    assert!(out.contains("dry run: nothing changed"), "{out}");
    assert_eq!(instance_state(&world, &stray.id).await, "running");
    assert_eq!(instance_state(&world, &own_instance).await, "running");
    assert_eq!(db.accounts().await, vec![alice.clone(), stray_account.clone()]);
    assert_eq!(world.session(&app, &overdue).await.state, State::Active);

    // The real run: the strays are removed, the overdue session is expired and torn down.
    let (code, out, err) = run_command(&world, &["reconcile"], &config, &[]).await;
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
    let (code, out, _) = run_command(&world, &["reconcile", "--dry-run"], &config, &[]).await;
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
    let request = AccountRequest { earlier_attempt: false, user: DbUsername::parse(&stray_user).unwrap(), host: "10.200.77.8".into(), role: Role::Read };
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
