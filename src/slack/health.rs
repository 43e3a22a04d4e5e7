//! Which targets powerpole refuses requests for right now, and why (an unreadable admin
//! credential, found at start-up or by a later check). The service keeps running; people asking
//! for such a target get the reason instead of a request no one could fulfil.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::domain::TargetName;

#[derive(Debug, Default)]
pub struct TargetHealth {
    refused: RwLock<HashMap<TargetName, String>>,
}

impl TargetHealth {
    /// Refuses requests for `target` from now on, for `reason` (shown to requesters).
    pub fn refuse(&self, target: &TargetName, reason: impl Into<String>) {
        let mut refused = self.refused.write().unwrap_or_else(|p| p.into_inner());
        refused.insert(target.clone(), reason.into());
    }

    /// Accepts requests for `target` again.
    pub fn accept(&self, target: &TargetName) {
        let mut refused = self.refused.write().unwrap_or_else(|p| p.into_inner());
        refused.remove(target);
    }

    /// Why requests for `target` are refused, if they are.
    pub fn refusal(&self, target: &TargetName) -> Option<String> {
        let refused = self.refused.read().unwrap_or_else(|p| p.into_inner());
        refused.get(target).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_target_can_be_accepted_again() {
        let health = TargetHealth::default();
        let billing = TargetName::parse("billing").unwrap();
        assert_eq!(health.refusal(&billing), None);
        health.refuse(&billing, "its admin credential cannot be read");
        assert_eq!(health.refusal(&billing).as_deref(), Some("its admin credential cannot be read"));
        health.accept(&billing);
        assert_eq!(health.refusal(&billing), None);
    }
}
