//! App Home: what one person sees in powerpole's Home tab, published on `app_home_opened` and
//! again after every action they take (and, for the requester, after an approver acts on their
//! session), so it is never staler than the last click.
//!
//! What a person may see is decided here: their own sessions, and the pending requests of the
//! targets they approve. Nobody else's session ever reaches their view.

use crate::domain::{SlackUserId, State};
use crate::notify::views::{self, Home, HOME_RECENT};
use crate::notify::Notifier;
use crate::workflow::{ActionError, Workflow};

/// How many of a person's sessions are read to find their live ones and their last ten.
const READ_OWN: usize = 50;

/// Gathers `user`'s App Home from the store.
pub async fn gather(workflow: &Workflow, notifier: &dyn Notifier, user: &SlackUserId) -> Result<Home, ActionError> {
    let own = workflow.store.by_requester(user, READ_OWN).await?;
    let (live, closed): (Vec<_>, Vec<_>) = own.into_iter().partition(|s| !s.state.is_closed());
    let mut approves = Vec::new();
    for target in workflow.config.targets.values() {
        // Per role: a role with an approval rule of its own has its own approvers.
        for role in crate::domain::Role::ALL {
            if crate::policy::is_role_approver(notifier, target, role, user).await.map_err(ActionError::Directory)? {
                approves.push((target.name.clone(), role));
            }
        }
    }
    let to_decide = if approves.is_empty() {
        None
    } else {
        let mut pending: Vec<_> = workflow
            .store
            .live()
            .await?
            .into_iter()
            .filter(|s| s.state == State::Pending && &s.requester.slack_id != user && approves.contains(&(s.target.clone(), s.role)))
            .filter(|s| !s.approvals.iter().any(|a| &a.approver == user))
            .collect();
        pending.sort_by_key(|s| s.created_at);
        Some(pending)
    };
    let may_ask = crate::notify::messages::policy::offer_lines(&workflow.offers(notifier, user).await.map_err(ActionError::Directory)?);
    Ok(Home { live, to_decide, recent: closed.into_iter().take(HOME_RECENT).collect(), may_ask })
}

/// Publishes `user`'s App Home; failures are logged (a stale Home tab never blocks an action).
pub async fn publish(workflow: &Workflow, notifier: &dyn Notifier, user: &SlackUserId) {
    let home = match gather(workflow, notifier, user).await {
        Ok(home) => home,
        Err(e) => {
            tracing::error!(%user, error = %e, "App Home could not be read");
            return;
        }
    };
    if let Err(e) = notifier.publish_view(user, &views::home_view(&home)).await {
        tracing::error!(%user, error = %e, "App Home could not be published");
    }
}

/// After an action on a session: the actor's App Home, and the requester's if someone else acted.
pub async fn republish_after(workflow: &Workflow, notifier: &dyn Notifier, actor: &SlackUserId, requester: Option<&SlackUserId>) {
    publish(workflow, notifier, actor).await;
    if let Some(requester) = requester.filter(|r| *r != actor) {
        publish(workflow, notifier, requester).await;
    }
}
