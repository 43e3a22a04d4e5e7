//! Two deployments of powerpole (`alpha` and `beta`, each with its own table and Slack) sharing one
//! AWS region and one database server: reconcile in one removes nothing of the other's, and
//! still removes its own strays; a bastion younger than `[scheduler] reconcile_grace` is spared;
//! what was removed is posted in the deployment's own approvals channel, and nothing when
//! nothing was.
//!
//! Reconcile looks at every bastion of its deployment in the region and every account of its
//! deployment on the server: the test has a moto region and a MariaDB server of its own
//! (tests/world/reconcile.rs), as tests/lifecycle_reconcile.rs has.

mod world;

use std::sync::Arc;

use chrono::{Duration, Utc};

use powerpole::app::App;
use powerpole::bastion::{BastionError, LaunchSpec};
use powerpole::domain::{DbUsername, Role, SessionId, SlackUserId, State, TargetName};
use powerpole::grants::AccountRequest;
use powerpole::workflow::{Clock, Fixed, ManualClock, SystemClock};
use world::reconcile::{instance_state, provisioned, PrivateMariadb, ROOT_PASSWORD};
use world::{Options, World, ALICE, APPROVALS};

const REGION: &str = "ap-southeast-3";

/// `world`'s configuration as deployment `id`.
fn config_of(world: &World, id: &str) -> String {
    world.config_text().replace("[deployment]\nid = \"test\"", &format!("[deployment]\nid = \"{id}\""))
}

async fn app_of(world: &World, id: &str, clock: Arc<dyn Clock>) -> App {
    world.app_with(&config_of(world, id), clock).await
}

/// A stray of `app`'s deployment: a bastion for a session its store never heard of, and an
/// account with its marker that no session owns. Returns (instance id, account user).
async fn strays(app: &App, world: &World, name: &str) -> (String, String) {
    let target = app.config.target(&TargetName::parse("billing").unwrap()).unwrap().clone();
    let spec = LaunchSpec::new(SessionId::random(), SlackUserId::parse(ALICE).unwrap(), "alice@example.com", &target);
    let instance = app.lifecycle.bastions.launch(&spec).await.expect("launch a stray bastion");
    let user = format!("{name}{}", world.id);
    let request = AccountRequest { earlier_attempt: false, user: DbUsername::parse(&user).unwrap(), host: "10.200.77.7".into(), role: Role::Read };
    app.lifecycle.grants.create_account(&target, &request).await.expect("create a stray account");
    (instance.id, user)
}

fn removed(found: &[Fixed]) -> Vec<String> {
    let mut out: Vec<String> = found.iter().filter(|f| f.removed()).map(|f| f.finding.to_string()).collect();
    out.sort();
    out
}

fn reconcile_posts(world: &World) -> Vec<String> {
    world
        .slack
        .calls()
        .into_iter()
        .filter(|c| c.method == "chat.postMessage" && c.text().contains("powerpole reconcile"))
        .map(|c| c.text())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_in_one_deployment_removes_its_own_strays_and_nothing_of_another_deployment_on_the_same_region_and_server() {
    let db = tokio::spawn(PrivateMariadb::start());
    let alpha_world = World::new_in_region(Options::default(), REGION).await;
    let beta_world = World::new_in_region(Options::default(), REGION).await;
    let db = db.await.expect("the private MariaDB starts");
    for w in [&alpha_world, &beta_world] {
        w.point_admin_secret_with("127.0.0.1", db.port, "root", ROOT_PASSWORD).await;
    }
    let alpha = app_of(&alpha_world, "alpha", Arc::new(SystemClock)).await;
    let beta = app_of(&beta_world, "beta", Arc::new(SystemClock)).await;

    // Beta: one live session (its bastion and account), and strays. Alpha: strays only.
    let live = provisioned(&beta_world, &beta, "billing").await;
    let session = beta_world.session(&beta, &live).await;
    let (beta_bastion, beta_ip) = (session.instance_id.clone().unwrap(), session.private_ip.clone().unwrap());
    let (beta_stray_bastion, beta_stray_user) = strays(&beta, &beta_world, "betastray").await;
    let (alpha_stray_bastion, alpha_stray_user) = strays(&alpha, &alpha_world, "alphastray").await;
    let beta_live_account = (beta_world.db_user(), beta_ip.clone());
    let mut everything = vec![beta_live_account.clone(), (alpha_stray_user.clone(), "10.200.77.7".into()), (beta_stray_user.clone(), "10.200.77.7".into())];
    everything.sort();
    assert_eq!(db.accounts().await, everything);

    // Each deployment sees only its own bastions.
    let listed = |l: Vec<powerpole::bastion::ManagedInstance>| -> Vec<String> {
        let mut ids: Vec<String> = l.into_iter().map(|i| i.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(listed(alpha.lifecycle.bastions.list_managed().await.unwrap()), vec![alpha_stray_bastion.clone()]);
    let mut beta_bastions = vec![beta_bastion.clone(), beta_stray_bastion.clone()];
    beta_bastions.sort();
    assert_eq!(listed(beta.lifecycle.bastions.list_managed().await.unwrap()), beta_bastions);

    // Now: alpha's stray bastion is younger than the grace (10m), so only its account goes.
    let found = alpha.lifecycle.reconcile(false, Duration::seconds(30)).await.expect("alpha reconciles");
    assert_eq!(removed(&found), vec![format!("account '{alpha_stray_user}'@'10.200.77.7' on billing: no live session owns it")], "{found:#?}");
    assert_eq!(instance_state(&alpha_world, &alpha_stray_bastion).await, "running", "a young bastion is spared");

    // Half an hour later (the bastion is past the grace), alpha removes its stray bastion too.
    let later = app_of(&alpha_world, "alpha", Arc::new(ManualClock::new(Utc::now() + Duration::minutes(30)))).await;
    let found = later.lifecycle.reconcile(false, Duration::seconds(30)).await.expect("alpha reconciles");
    assert_eq!(removed(&found).len(), 1, "{found:#?}");
    assert!(removed(&found)[0].starts_with(&format!("instance {alpha_stray_bastion} ")), "{found:#?}");
    assert_eq!(instance_state(&alpha_world, &alpha_stray_bastion).await, "terminated");

    // Nothing of beta's was touched: its live session, its bastion and account, and its strays.
    for id in [&beta_bastion, &beta_stray_bastion] {
        assert_eq!(instance_state(&beta_world, id).await, "running", "beta's bastion {id}");
    }
    let mut beta_accounts = vec![beta_live_account.clone(), (beta_stray_user.clone(), "10.200.77.7".into())];
    beta_accounts.sort();
    assert_eq!(db.accounts().await, beta_accounts);
    assert_eq!(beta_world.session(&beta, &live).await.state, State::Active);

    // And alpha may not terminate beta's bastion even when asked by id.
    let refused = alpha.lifecycle.bastions.terminate(&beta_bastion).await;
    assert!(matches!(refused, Err(BastionError::OtherDeployment { .. })), "{refused:?}");
    assert_eq!(instance_state(&beta_world, &beta_bastion).await, "running");

    // What alpha removed was posted in alpha's approvals channel, once per run that removed
    // something; beta's Slack heard nothing.
    let posts = reconcile_posts(&alpha_world);
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert!(posts[0].contains(&alpha_stray_user) && posts[0].contains("alpha"), "{}", posts[0]);
    assert!(posts[1].contains(&alpha_stray_bastion), "{}", posts[1]);
    let channels: Vec<String> =
        alpha_world.slack.calls().into_iter().filter(|c| c.text().contains("powerpole reconcile")).map(|c| c.response["channel"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(channels, vec![APPROVALS.to_string(), APPROVALS.to_string()]);
    assert!(reconcile_posts(&beta_world).is_empty());

    // A run that removes nothing posts nothing.
    let found = later.lifecycle.reconcile(false, Duration::seconds(30)).await.expect("alpha reconciles");
    assert!(removed(&found).is_empty(), "{found:#?}");
    assert_eq!(reconcile_posts(&alpha_world).len(), 2);

    // Beta, later too, removes its own strays and keeps its live session's bastion and account.
    let beta_later = app_of(&beta_world, "beta", Arc::new(ManualClock::new(Utc::now() + Duration::minutes(30)))).await;
    let found = beta_later.lifecycle.reconcile(false, Duration::hours(2)).await.expect("beta reconciles");
    assert_eq!(removed(&found).len(), 2, "{found:#?}");
    assert_eq!(instance_state(&beta_world, &beta_stray_bastion).await, "terminated");
    assert_eq!(instance_state(&beta_world, &beta_bastion).await, "running");
    assert_eq!(db.accounts().await, vec![beta_live_account]);
    assert_eq!(beta_world.session(&beta, &live).await.state, State::Active);
    assert_eq!(reconcile_posts(&beta_world).len(), 1);
}
