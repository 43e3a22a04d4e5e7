//! Waiting for bastions' SSM agents to come online. SSM offers no notification for this, so
//! `DescribeInstanceInformation` is polled until it says `Online` or time is up.
//!
//! One poll asks about every bastion this process is waiting for ([`Watch`]): the rate of calls
//! is one per interval however many bastions (up to 50) boot at once (SSM throttles
//! `DescribeInstanceInformation` per account), so the interval can be short, and it is the
//! requester's wait: every moment between the agent registering and the poll that sees it is
//! added to the hand-over.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ssm::types::{InstanceInformationStringFilter, PingStatus};
use tokio::sync::watch;

use super::BastionError;

/// The most instance ids one call asks about (the most `DescribeInstanceInformation` answers).
const PER_CALL: usize = 50;

/// What one poll found.
#[derive(Debug, Default)]
struct Round {
    online: HashSet<String>,
    /// Calls that failed, with the ids each asked for: those waiters are told (as a lone poll's
    /// error was).
    failed: Vec<(HashSet<String>, String)>,
}

#[derive(Default)]
struct Waiting {
    /// Instance id -> how many waits are on it.
    ids: HashMap<String, usize>,
    /// A poller task is running (it stops when nobody waits).
    polling: bool,
}

/// The bastions this process waits for, polled together every `interval` while any is waited on.
pub struct Watch {
    ssm: aws_sdk_ssm::Client,
    interval: Duration,
    waiting: Mutex<Waiting>,
    rounds: watch::Sender<Round>,
}

impl Watch {
    pub fn new(ssm: aws_sdk_ssm::Client, interval: Duration) -> Arc<Watch> {
        Arc::new(Watch { ssm, interval, waiting: Mutex::default(), rounds: watch::Sender::new(Round::default()) })
    }

    /// Waits until the agent on `instance_id` is online; [`BastionError::NotOnline`] after
    /// `timeout`, [`BastionError::Ssm`] if SSM refuses the poll that asks for it.
    pub async fn wait(self: &Arc<Self>, instance_id: &str, timeout: Duration) -> Result<(), BastionError> {
        // Subscribed before registering: the first round that asks for it is seen.
        let mut rounds = self.rounds.subscribe();
        let _registered = self.register(instance_id);
        let seen = async {
            loop {
                if rounds.changed().await.is_err() {
                    return Err(BastionError::Ssm { instance_id: instance_id.to_string(), message: "the poller stopped".into() });
                }
                let round = rounds.borrow_and_update();
                if round.online.contains(instance_id) {
                    return Ok(());
                }
                if let Some((_, message)) = round.failed.iter().find(|(asked, _)| asked.contains(instance_id)) {
                    return Err(BastionError::Ssm { instance_id: instance_id.to_string(), message: message.clone() });
                }
            }
        };
        match tokio::time::timeout(timeout, seen).await {
            Ok(result) => result,
            Err(_) => Err(BastionError::NotOnline { instance_id: instance_id.to_string(), waited: timeout }),
        }
    }

    /// Adds a wait on `instance_id` (removed when the guard drops) and starts the poller if none
    /// runs.
    fn register(self: &Arc<Self>, instance_id: &str) -> Registered {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        *waiting.ids.entry(instance_id.to_string()).or_default() += 1;
        if !waiting.polling {
            waiting.polling = true;
            tokio::spawn(self.clone().poll());
        }
        Registered { watch: self.clone(), instance_id: instance_id.to_string() }
    }

    /// Polls for every id waited on, every `interval`, until nobody waits.
    async fn poll(self: Arc<Self>) {
        let _restartable = Restartable(self.clone());
        loop {
            let ids: Vec<String> = {
                let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                if waiting.ids.is_empty() {
                    waiting.polling = false;
                    return;
                }
                waiting.ids.keys().cloned().collect()
            };
            let mut round = Round::default();
            for chunk in ids.chunks(PER_CALL) {
                match online_among(&self.ssm, chunk).await {
                    Ok(found) => round.online.extend(found),
                    Err(message) => round.failed.push((chunk.iter().cloned().collect(), message)),
                }
            }
            self.rounds.send_replace(round);
            tokio::time::sleep(self.interval).await;
        }
    }
}

/// A poller that panicked is started again by the next wait (one that returned said so itself).
struct Restartable(Arc<Watch>);

impl Drop for Restartable {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.waiting.lock().unwrap_or_else(|p| p.into_inner()).polling = false;
        }
    }
}

/// One wait's registration; dropping it (the wait ended, or timed out) removes it.
struct Registered {
    watch: Arc<Watch>,
    instance_id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut waiting = self.watch.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = waiting.ids.get_mut(&self.instance_id) {
            *count -= 1;
            if *count == 0 {
                waiting.ids.remove(&self.instance_id);
            }
        }
    }
}

/// Why a call was refused.
enum Refused {
    /// SSM does not know an id (an agent that has not registered yet can be refused so).
    UnknownId,
    /// SSM is throttling this account's calls: nothing is learnt this round, the next asks again.
    Throttled,
    Other(String),
}

/// The ids among `ids` whose agent is online. When a call for several is refused for an unknown
/// id, each is asked about alone (an unknown one is not online yet).
async fn online_among(ssm: &aws_sdk_ssm::Client, ids: &[String]) -> Result<Vec<String>, String> {
    match describe(ssm, ids).await {
        Ok(found) => Ok(found),
        Err(Refused::UnknownId) if ids.len() > 1 => {
            let mut online = Vec::new();
            for id in ids {
                match describe(ssm, std::slice::from_ref(id)).await {
                    Ok(found) => online.extend(found),
                    Err(Refused::UnknownId | Refused::Throttled) => {}
                    Err(Refused::Other(message)) => return Err(message),
                }
            }
            Ok(online)
        }
        Err(Refused::UnknownId) => Ok(Vec::new()),
        Err(Refused::Throttled) => {
            tracing::warn!(instances = ids.len(), "SSM throttled the online check; asking again at the next poll");
            Ok(Vec::new())
        }
        Err(Refused::Other(message)) => Err(message),
    }
}

async fn describe(ssm: &aws_sdk_ssm::Client, ids: &[String]) -> Result<Vec<String>, Refused> {
    let filter = InstanceInformationStringFilter::builder().key("InstanceIds").set_values(Some(ids.to_vec())).build().map_err(|e| Refused::Other(e.to_string()))?;
    match ssm.describe_instance_information().filters(filter).max_results(PER_CALL as i32).send().await {
        Ok(answer) => Ok(answer
            .instance_information_list()
            .iter()
            .filter(|i| i.ping_status() == Some(&PingStatus::Online))
            .filter_map(|i| i.instance_id())
            .filter(|id| ids.iter().any(|wanted| wanted == id))
            .map(str::to_string)
            .collect()),
        Err(e) => Err(match e.code() {
            Some("InvalidInstanceId") => Refused::UnknownId,
            Some("ThrottlingException") => Refused::Throttled,
            _ => Refused::Other(DisplayErrorContext(&e).to_string()),
        }),
    }
}
