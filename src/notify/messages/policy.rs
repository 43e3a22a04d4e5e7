//! What people read about the policy (`crate::policy`): an auto-approved request, and what a
//! person may ask for (the request form's hint and App Home).

use crate::domain::Session;
use crate::notify::Message;
use crate::workflow::policy::Offer;

/// The requester's answer when a rule approved their request without a person.
pub fn auto_approved(s: &Session, channel: &str) -> Message {
    Message::plain(format!(
        ":robot_face: Request {} ({} on `{}` for {}) is auto-approved by rule `{}`, and announced in <#{channel}> like any other. Your bastion is being prepared; the connection details will arrive by DM in a few minutes.",
        s.id,
        s.role,
        s.target,
        s.duration,
        s.auto_approved.as_deref().unwrap_or_default()
    ))
}

/// One line per target: `billing: READ up to 1h, DML up to 4h`.
pub fn offer_lines(offers: &[Offer]) -> Vec<String> {
    offers
        .iter()
        .map(|o| format!("{}: {}", o.target, o.roles.iter().map(|(r, max)| format!("{r} up to {max}")).collect::<Vec<_>>().join(", ")))
        .collect()
}
