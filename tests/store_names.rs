//! Database user name reservations against moto's DynamoDB: a name is given to one Slack user
//! for good, so a hash collision between two people's addresses is refused, not shared.

mod store_support;

use powerpole::domain::{DbUsername, UsernamePolicy};
use powerpole::store::{Store, StoreError};
use store_support::{user, TestTable};

/// Two addresses that a one-hex-digit hash maps to the same name (a collision forced by a
/// test-only hash width: with the real 64 bits no search finds one).
fn colliding_pair() -> (String, String, DbUsername) {
    let policy = UsernamePolicy { home_domains: vec!["example.com".into()] };
    let name = |email: &str| DbUsername::from_slack_email_with_hash_width(email, &policy, 1).expect("a usable address");
    let first = "dave.smith@contractor.io".to_string();
    let target = name(&first);
    // Same base (`dave_smith`: any run of separators is one `_`), different addresses.
    let seps: &[&str] = &[".", "-", "+", "_", "=", "~"];
    let candidates = seps.iter().flat_map(move |a| seps.iter().flat_map(move |b| seps.iter().map(move |c| format!("{a}{b}{c}"))));
    for sep in candidates {
        let other = format!("dave{sep}smith@contractor.io");
        if other != first && name(&other) == target {
            return (first, other, target);
        }
    }
    panic!("no collision among 216 addresses with a 4-bit hash");
}

#[tokio::test]
async fn a_name_is_reserved_for_one_person_and_a_collision_is_refused() {
    let table = TestTable::new().await;
    let (a, b, name) = colliding_pair();
    assert_ne!(a, b);
    let (dave, mallory) = (user("U0DAVE"), user("U0MALLORY"));

    table.store.reserve_db_user(&name, &dave).await.expect("a free name is reserved");
    table.store.reserve_db_user(&name, &dave).await.expect("the owner's next request keeps it");
    let refused = table.store.reserve_db_user(&name, &mallory).await;
    assert_eq!(refused, Err(StoreError::NameTaken(name.to_string())), "{b} must not get {a}'s name");
    // The owner is unchanged.
    table.store.reserve_db_user(&name, &dave).await.expect("still dave's");
    table.delete().await;
}
