//! [`Bastions`] over the AWS SDK: EC2 for the instances, SSM for the AMI parameter and the
//! agent's status.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::types::{InstanceType, ShutdownBehavior};

use crate::config::BastionConfig;
use crate::domain::{DeploymentId, SessionId};

use super::instances::{describe, is_instance_id, not_terminated, tag, tag_filter, to_instance, to_managed};
use super::{launch, online, tags, BastionError, Bastions, Instance, InstanceState, LaunchSpec, ManagedInstance};

/// What EC2 says about an instance id it does not know (any more).
const NOT_FOUND: &str = "InvalidInstanceID.NotFound";

/// The production [`Bastions`].
pub struct Ec2Bastions {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    config: BastionConfig,
    deployment: DeploymentId,
    /// The bastions `wait_online` waits for, polled together.
    online: std::sync::Arc<online::Watch>,
}

impl Ec2Bastions {
    /// An agent takes tens of seconds to register, and every moment between its registering and
    /// the poll that sees it is added to the requester's wait (half the interval on average; a
    /// bastion launched at request is online when Approve is clicked, so this is most of what
    /// the hand-over then takes). One poll asks about every bastion waited for, so this is one
    /// `DescribeInstanceInformation` every half second per process while any bastion boots,
    /// however many do.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

    pub fn new(ec2: aws_sdk_ec2::Client, ssm: aws_sdk_ssm::Client, config: BastionConfig) -> Ec2Bastions {
        let online = online::Watch::new(ssm.clone(), Self::DEFAULT_POLL_INTERVAL);
        Ec2Bastions { ec2, ssm, config, deployment: DeploymentId::default(), online }
    }

    /// Tags what it launches with `deployment`, and lists and terminates only bastions tagged
    /// with it (`[deployment] id`; `default` unless set).
    pub fn in_deployment(mut self, deployment: DeploymentId) -> Ec2Bastions {
        self.deployment = deployment;
        self
    }

    /// `powerpole doctor`: the target's subnet and security group exist, the group admits
    /// nothing inbound, and the AMI resolves. Returns what was found, or what to fix.
    pub async fn check_target(&self, target: &crate::config::TargetConfig) -> Result<String, String> {
        let subnets = self.ec2.describe_subnets().subnet_ids(&target.subnet_id).send().await.map_err(|e| {
            format!("subnet {} cannot be described ({}): check the id and ec2:DescribeSubnets", target.subnet_id, aws_sdk_ec2::error::DisplayErrorContext(&e))
        })?;
        let subnet = subnets.subnets().first().ok_or_else(|| format!("subnet {} does not exist", target.subnet_id))?;
        let groups = self.ec2.describe_security_groups().group_ids(&target.security_group_id).send().await.map_err(|e| {
            format!("security group {} cannot be described ({}): check the id", target.security_group_id, aws_sdk_ec2::error::DisplayErrorContext(&e))
        })?;
        let group = groups.security_groups().first().ok_or_else(|| format!("security group {} does not exist", target.security_group_id))?;
        if !group.ip_permissions().is_empty() {
            return Err(format!(
                "security group {} has {} inbound rule(s): bastions are reached through Session Manager only; remove them",
                target.security_group_id,
                group.ip_permissions().len()
            ));
        }
        if group.vpc_id() != subnet.vpc_id() {
            return Err(format!("security group {} and subnet {} are in different VPCs", target.security_group_id, target.subnet_id));
        }
        let spec = LaunchSpec::new(crate::domain::SessionId::random(), crate::domain::SlackUserId::parse("U0DOCTOR").map_err(|e| e.to_string())?, "doctor@example.com", target);
        let ami = launch::resolve_ami(&self.ssm, &spec, &self.config.ami_parameter).await.map_err(|e| e.to_string())?;
        let public = if subnet.map_public_ip_on_launch() == Some(true) { " (it maps public IPs by default; powerpole turns that off per launch)" } else { "" };
        Ok(format!("subnet {} in {}{public}, security group {} with no inbound rules, AMI {ami}", target.subnet_id, subnet.vpc_id().unwrap_or("?"), target.security_group_id))
    }

    /// Both clients from one SDK configuration (region, credentials, endpoint overrides).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, config: BastionConfig) -> Ec2Bastions {
        Self::new(aws_sdk_ec2::Client::new(sdk), aws_sdk_ssm::Client::new(sdk), config)
    }

    /// How often `wait_online` asks SSM (tests make it short).
    pub fn with_poll_interval(mut self, interval: Duration) -> Ec2Bastions {
        self.online = online::Watch::new(self.ssm.clone(), interval);
        self
    }

    async fn run(&self, spec: &LaunchSpec) -> Result<Instance, BastionError> {
        let identity = super::identity::identity(self.config.identity_source, &self.config.home_domains, &spec.requester, &spec.requester_email)?;
        let user_data = launch::user_data_with_ca(spec.ca_bundle.as_deref())?;
        let ami = launch::resolve_ami(&self.ssm, spec, &self.config.ami_parameter).await?;
        let root_device = launch::root_device(&self.ec2, &ami).await?;
        let instance_type = spec.instance_type.as_deref().unwrap_or(&self.config.instance_type);
        let answer = self
            .ec2
            .run_instances()
            .client_token(spec.session.as_str())
            .image_id(&ami)
            .instance_type(InstanceType::from(instance_type))
            .min_count(1)
            .max_count(1)
            .network_interfaces(launch::network_interface(spec))
            .metadata_options(launch::metadata_options())
            .block_device_mappings(launch::root_volume(&root_device, self.config.root_volume_gib))
            .iam_instance_profile(launch::instance_profile(&self.config.instance_profile))
            .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
            .user_data(user_data)
            .set_tag_specifications(Some(launch::tag_specifications(spec, &identity, &self.deployment)))
            .send()
            .await
            .map_err(|e| BastionError::Ec2 { action: "RunInstances", message: DisplayErrorContext(&e).to_string() })?;
        let launched = answer.instances().first().ok_or_else(|| BastionError::Ec2 {
            action: "RunInstances",
            message: "the answer holds no instance".into(),
        })?;
        to_instance(launched)
    }
}

/// A session's bastion is handed out only while it lives.
fn alive(session: &SessionId, instance: Instance) -> Result<Instance, BastionError> {
    if instance.state.is_ending() {
        return Err(BastionError::Ended { session: session.to_string(), instance_id: instance.id, state: instance.state.as_str().to_string() });
    }
    Ok(instance)
}

#[async_trait]
impl Bastions for Ec2Bastions {
    async fn launch(&self, spec: &LaunchSpec) -> Result<Instance, BastionError> {
        if let Some(existing) = self.find(&spec.session).await? {
            tracing::info!(session = %spec.session, instance = %existing.id, "bastion already launched");
            return alive(&spec.session, existing);
        }
        // With the same ClientToken, EC2 answers a retry with the first launch's instance,
        // terminated or not; `alive` refuses a terminated one.
        let instance = alive(&spec.session, self.run(spec).await?)?;
        tracing::info!(session = %spec.session, instance = %instance.id, ip = %instance.private_ip, "bastion launched");
        Ok(instance)
    }

    async fn find(&self, session: &SessionId) -> Result<Option<Instance>, BastionError> {
        let found = describe(&self.ec2, vec![tag_filter(tags::SESSION, session.as_str()), not_terminated()]).await?;
        if found.len() > 1 {
            // Only possible where ClientToken is not honoured (moto) or was bypassed by hand.
            tracing::warn!(session = %session, count = found.len(), "more than one bastion for a session; using the oldest, reconcile removes the rest");
        }
        let oldest = found.iter().min_by_key(|i| (i.launch_time().map(|t| t.secs()), i.instance_id().map(str::to_string)));
        oldest.map(to_instance).transpose()
    }

    async fn set_identity(&self, instance_id: &str, spec: &LaunchSpec) -> Result<(), BastionError> {
        if !is_instance_id(instance_id) {
            return Err(BastionError::InvalidInstanceId(instance_id.to_string()));
        }
        let identity = super::identity::identity(self.config.identity_source, &self.config.home_domains, &spec.requester, &spec.requester_email)?;
        // By id, not by the (eventually consistent) tag filter: approval may follow the launch closely.
        let answer = self
            .ec2
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| BastionError::Ec2 { action: "DescribeInstances", message: DisplayErrorContext(&e).to_string() })?;
        let found = answer.reservations().iter().flat_map(|r| r.instances()).next();
        let gone = |state: &str| BastionError::Ended { session: spec.session.to_string(), instance_id: instance_id.to_string(), state: state.to_string() };
        let Some(instance) = found else { return Err(gone("gone")) };
        let state = super::instances::state(instance);
        if state.is_ending() {
            return Err(gone(state.as_str()));
        }
        if tag(instance, tags::SESSION) != Some(spec.session.as_str()) || tag(instance, tags::DEPLOYMENT) != Some(self.deployment.as_str()) {
            return Err(BastionError::NotManaged { instance_id: instance_id.to_string() });
        }
        // The policies let powerpole add the tag only where there is none (a retry whose first
        // answer was lost finds it set), and never change it: a bastion never changes hands.
        match tag(instance, tags::IDENTITY) {
            Some(tagged) if tagged == identity => return Ok(()),
            Some(tagged) => return Err(BastionError::OtherIdentity { instance_id: instance_id.to_string(), tagged: tagged.to_string() }),
            None => {}
        }
        let tag = aws_sdk_ec2::types::Tag::builder().key(tags::IDENTITY).value(&identity).build();
        self.ec2
            .create_tags()
            .resources(instance_id)
            .tags(tag)
            .send()
            .await
            .map_err(|e| BastionError::Ec2 { action: "CreateTags", message: DisplayErrorContext(&e).to_string() })?;
        tracing::info!(session = %spec.session, instance = %instance_id, "identity tag set at approval");
        Ok(())
    }

    async fn wait_online(&self, instance_id: &str, timeout: Duration) -> Result<(), BastionError> {
        self.online.wait(instance_id, timeout).await
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), BastionError> {
        if !is_instance_id(instance_id) {
            return Err(BastionError::InvalidInstanceId(instance_id.to_string()));
        }
        let found = match self.ec2.describe_instances().instance_ids(instance_id).send().await {
            Ok(answer) => answer.reservations().iter().flat_map(|r| r.instances()).next().cloned(),
            Err(e) if e.code() == Some(NOT_FOUND) => None,
            Err(e) => return Err(BastionError::Ec2 { action: "DescribeInstances", message: DisplayErrorContext(&e).to_string() }),
        };
        let Some(instance) = found else {
            return Ok(());
        };
        if super::instances::state(&instance) == InstanceState::Terminated {
            return Ok(());
        }
        if tag(&instance, tags::MANAGED) != Some("true") {
            return Err(BastionError::NotManaged { instance_id: instance_id.to_string() });
        }
        if tag(&instance, tags::DEPLOYMENT) != Some(self.deployment.as_str()) {
            return Err(BastionError::OtherDeployment {
                instance_id: instance_id.to_string(),
                tagged: tag(&instance, tags::DEPLOYMENT).unwrap_or("nothing").to_string(),
                ours: self.deployment.to_string(),
            });
        }
        match self.ec2.terminate_instances().instance_ids(instance_id).send().await {
            Ok(_) => {
                tracing::info!(instance = %instance_id, "bastion terminated");
                Ok(())
            }
            Err(e) if e.code() == Some(NOT_FOUND) => Ok(()),
            Err(e) => Err(BastionError::Ec2 { action: "TerminateInstances", message: DisplayErrorContext(&e).to_string() }),
        }
    }

    async fn list_managed(&self) -> Result<Vec<ManagedInstance>, BastionError> {
        let filters = vec![tag_filter(tags::MANAGED, "true"), tag_filter(tags::DEPLOYMENT, self.deployment.as_str()), not_terminated()];
        let found = describe(&self.ec2, filters).await?;
        Ok(found.iter().map(to_managed).collect())
    }
}
