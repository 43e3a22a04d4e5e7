//! Every error a requester or an approver can read in Slack, walked with the worst causes behind
//! it (an I/O error chain, an AWS error code, a MySQL error, a TLS failure): what they read holds
//! none of it, nor an operator's command. The cause goes to the operator's log instead (each
//! error's `cause()`, logged with the request id where the error is turned into Slack text).
//!
//! Operator alerts posted in the approvals channel (a stuck teardown, an account kept locked,
//! reconcile's report) are addressed to the platform team and keep their causes; the security
//! channel's summary keeps the report command. Neither is walked here.

use std::time::Duration;

use crate::bastion::BastionError;
use crate::config::IdentitySource;
use crate::domain::{Event, Outcome, Role, SessionId, State, TargetName, UsernameError};
use crate::grants::GrantError;
use crate::notify::messages::fixtures::{config, session, target};
use crate::notify::{messages, NotifyError};
use crate::store::StoreError;
use super::breakglass::{BreakGlassError, BreakGlassProblem};
use super::lifecycle::ProvisionError;
use super::request::{check_request, RequestError, RequestProblem};
use super::ActionError;

/// What a person must never read: the text of a technical cause or an operator's command.
fn operator_text(said: &str) -> Vec<&'static str> {
    const MARKERS: [&str; 22] = [
        "Input/output error",
        "io error",
        "error:",
        "Error:",
        "MySQL error",
        "(error ",
        "Exception",
        "ResourceNotFound",
        "AccessDenied",
        "UnknownIssuer",
        "invalid peer certificate",
        "dispatch failure",
        "service error",
        "timed out after",
        "CREATE USER",
        "SHOW GRANTS",
        "`powerpole ",
        "powerpole doctor",
        "powerpole reconcile",
        "identity_source",
        "Secrets Manager",
        "this is a bug",
    ];
    let mut found: Vec<&'static str> = MARKERS.iter().copied().filter(|m| said.contains(m)).collect();
    // A chain of causes: "a: b: c" within one sentence. One colon introduces an explanation;
    // two in a row are a chain.
    // Slack's emoji (`:warning: `) are not colons of a sentence.
    let said = without_emoji(said);
    if said.split(['.', '\n', '"', '*', '>', ';']).any(|sentence| sentence.matches(": ").count() > 1) {
        found.push("a chain of causes (`: ` twice in one sentence)");
    }
    found
}

/// `text` without Slack emoji codes (`:warning:`, `:white_check_mark:`).
fn without_emoji(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(':') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let name_len = after.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-".contains(c))).unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with(':') {
            rest = &after[name_len + 1..];
        } else {
            out.push(':');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn assert_for_people(what: &str, said: &str) {
    let found = operator_text(said);
    assert!(found.is_empty(), "{what}: a person reads operator text ({found:?}): {said}");
}

/// The worst causes behind each kind of failure.
fn io_chain() -> String {
    "Input/output error: Input/output error: invalid peer certificate: UnknownIssuer".into()
}

fn slack_down() -> NotifyError {
    NotifyError::Unreachable { method: "users.info", reason: format!("error sending request: {}", io_chain()) }
}

fn store_down() -> StoreError {
    StoreError::Unavailable("ProvisionedThroughputExceededException: service error: dispatch failure: io error".into())
}

fn billing() -> TargetName {
    TargetName::parse("billing").unwrap()
}

fn grant_errors() -> Vec<GrantError> {
    let t = billing;
    vec![
        GrantError::AdminSecretUnreadable { target: t(), secret_id: "powerpole/billing-admin".into(), message: "ResourceNotFoundException: Secrets Manager can't find the specified secret".into() },
        GrantError::AdminSecretMalformed { target: t(), secret_id: "powerpole/billing-admin".into(), problem: "expected value at line 1".into() },
        GrantError::AdminConnect { target: t(), host: "billing.example.com".into(), port: 3306, user: "admin".into(), message: io_chain() },
        GrantError::PasswordPolicy { target: t() },
        GrantError::Statement { target: t(), what: "create the account", code: 1227, message: "Access denied; you need (at least one of) the CREATE USER privilege(s)".into() },
        GrantError::TimedOut { target: t(), what: "create the account", limit: Duration::from_secs(30) },
        GrantError::GaveUp { target: t(), deadline: Duration::from_secs(120), cause: io_chain(), rollback: "the account was locked and dropped".into() },
        GrantError::ForeignAccount { target: t(), account: "'alice'@'10.0.1.5'".into() },
        GrantError::KeptForDefiner { target: t(), account: "'alice'@'10.0.1.5'".into(), objects: "TRIGGER billing.t1".into() },
        GrantError::CaBundle { target: t(), path: "/etc/powerpole/rds-ca-bundle.pem".into(), message: "No such file or directory (os error 2)".into() },
        GrantError::Connection { target: t(), what: "kill the sessions", message: io_chain() },
    ]
}

fn provision_errors() -> Vec<ProvisionError> {
    let mut all: Vec<ProvisionError> = grant_errors().into_iter().map(ProvisionError::Grant).collect();
    all.extend([
        ProvisionError::LostClaim,
        ProvisionError::Store(store_down()),
        ProvisionError::Launch(BastionError::Ec2 { action: "RunInstances", message: "UnauthorizedOperation: You are not authorized".into() }),
        ProvisionError::Online(BastionError::NotOnline { instance_id: "i-0abc".into(), waited: Duration::from_secs(300) }),
        ProvisionError::Handover(slack_down()),
        ProvisionError::Bug("the grant finished without an answer"),
        ProvisionError::AccountInUse { other: SessionId::random(), user: "alice".into(), host: "10.0.1.5".into() },
    ]);
    all
}

#[test]
fn every_request_refusal_is_written_for_the_requester() {
    let c = config();
    let problems = [
        check_request(&c, "payments", "READ", "1h", "x"),
        check_request(&c, "billing", "ADMIN", "1h", "x"),
        check_request(&c, "billing", "READ", "soon", "x"),
        check_request(&c, "billing", "READ", "5h", "x"),
        check_request(&c, "billing", "READ", "1h", " "),
        check_request(&c, "billing", "READ", "1h", &"x".repeat(501)),
    ];
    for p in problems {
        let p: RequestProblem = p.unwrap_err();
        assert_for_people("a request problem", &p.to_string());
    }
    let refusal = crate::bastion::identity::check(IdentitySource::Email, &[], &crate::domain::SlackUserId::parse("U0OBRIEN").unwrap(), "o'brien@example.com").unwrap_err();
    let errors = [
        RequestError::Profile(slack_down()),
        RequestError::Username(UsernameError::Empty),
        RequestError::Username(UsernameError::NotAnAddress("nobody".into())),
        RequestError::NoIdentity { email: "o'brien@example.com".into(), identity_source: IdentitySource::Email, refusal },
        RequestError::NoIdentity {
            email: "alice@contractor.io".into(),
            identity_source: IdentitySource::EmailLocalPart,
            refusal: crate::bastion::identity::IdentityRefusal::ForeignDomain { domain: "contractor.io".into() },
        },
        RequestError::Store(store_down()),
        RequestError::AccountInUse { session: SessionId::random(), target: "billing".into(), state: "active".into() },
        RequestError::NameTaken("alice".into()),
        RequestError::Card { channel: "C0APPROVALS".into(), error: slack_down() },
    ];
    for e in errors {
        let said = messages::problem(&e.to_string(), "").text;
        assert_for_people("a request error", &said);
        // The operator gets the cause.
        if matches!(e, RequestError::Profile(_) | RequestError::Store(_) | RequestError::Card { .. }) {
            assert!(operator_text(&e.cause()).iter().any(|m| m.contains("Input/output") || m.contains("Exception")), "the log keeps the cause: {}", e.cause());
        }
    }
}

#[test]
fn every_action_and_break_glass_refusal_is_written_for_the_person() {
    let id = SessionId::random();
    let errors = [
        ActionError::NotFound(id.clone()),
        ActionError::NotYours(id.clone()),
        ActionError::NotAnApprover("billing".into()),
        ActionError::OwnRequest,
        ActionError::AlreadyApproved { id: id.clone(), remaining: 1 },
        ActionError::WrongState { id: id.clone(), state: State::Active, what: "only an active session can be extended" },
        ActionError::UnknownTarget("billing".into()),
        ActionError::Directory(slack_down()),
        ActionError::Store(store_down()),
        ActionError::Busy(id.clone()),
        ActionError::Slack(slack_down()),
    ];
    for e in &errors {
        assert_for_people("an action error", &crate::slack::refusal(e));
    }
    assert!(errors.iter().filter_map(ActionError::cause).all(|c| !operator_text(&c).is_empty()), "the log keeps each cause");
    // A button's form (Deny, Extend, Flag) that could not be opened.
    use crate::slack::interaction::{not_opened, NotOpened};
    let request = crate::slack::RequestId::new();
    for e in [NotOpened::Slack(slack_down()), NotOpened::Refused(ActionError::Store(store_down())), NotOpened::Refused(ActionError::Directory(slack_down()))] {
        assert_for_people("a form that was not opened", &not_opened(&request, e));
    }
    for e in [BreakGlassError::Directory(slack_down()), BreakGlassError::Request(RequestError::Store(store_down()))] {
        assert_for_people("a break-glass error", &e.to_string());
    }
    for p in [BreakGlassProblem::NotOffered(billing()), BreakGlassProblem::NoDdl(billing())] {
        assert_for_people("a break-glass problem", &p.to_string());
    }
}

#[test]
fn a_failed_provisioning_reads_as_what_happened_on_the_dm_and_the_card() {
    let t = target();
    for cause in provision_errors() {
        let words = cause.for_people();
        let mut s = session(Role::Dml);
        s.apply(Event::Approved).unwrap();
        s.apply(Event::ProvisioningStarted).unwrap();
        s.apply(Event::ProvisioningFailed).unwrap();
        s.decision_reason = Some(words.clone());
        let dm = messages::provisioning_failed(&s, &words).text;
        assert_for_people(&format!("the DM for {cause}"), &dm);
        assert!(dm.contains(s.id.as_str()) && dm.contains("/powerpole request"), "what to quote and what to do: {dm}");
        let card = serde_json::to_string(&messages::approval_card(&s, &t).blocks).unwrap();
        assert_for_people(&format!("the card for {cause}"), &card);
        s.apply(Event::TornDown).ok();
        if s.state == State::Closed(Outcome::Failed) {
            assert_for_people(&format!("the teardown notice for {cause}"), &messages::teardown_notice(&s).text);
            let card = serde_json::to_string(&messages::approval_card(&s, &t).blocks).unwrap();
            assert_for_people(&format!("the closed card for {cause}"), &card);
        }
    }
}

#[test]
fn a_refused_target_is_explained_without_the_operators_cause() {
    let health = crate::slack::TargetHealth::default();
    let at = chrono::Utc::now();
    health.unchecked(&billing(), "C0APPROVALS", at);
    assert_for_people("an unchecked target", &health.refusal(&billing()).unwrap());
    health.refuse(&billing(), "C0APPROVALS", at);
    let said = health.refusal(&billing()).unwrap();
    assert_for_people("a refused target", &said);
    assert!(said.contains("tries again at") && said.contains("<#C0APPROVALS>"), "when and whom to ask: {said}");
}

#[test]
fn the_walk_catches_what_it_must() {
    assert!(!operator_text("could not be set up: Input/output error: Input/output error: invalid peer certificate").is_empty());
    assert!(!operator_text("check again with `powerpole doctor`").is_empty());
    assert!(operator_text("`billing` allows at most 4h per session; ask for 4h or less").is_empty());
    assert!(operator_text(":warning: there is no target `x`: choose one").is_empty(), "an emoji is not a colon of the sentence");
    assert!(!operator_text(":x: it failed: error sending request: connection refused").is_empty());
}
