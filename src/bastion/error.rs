//! What can go wrong with bastions, each said so that an operator knows what to check.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BastionError {
    #[error("could not read the bastion AMI id from SSM parameter `{parameter}`: {message}; check that the parameter exists in this region and powerpole may ssm:GetParameter on it, or set the target's `ami`")]
    AmiParameter { parameter: String, message: String },

    #[error("EC2 {action} failed: {message}; check powerpole's IAM permissions (infra/modules/powerpole/policies/) and the target's subnet, security group and AMI")]
    Ec2 { action: &'static str, message: String },

    #[error("SSM DescribeInstanceInformation failed for {instance_id}: {message}; check that powerpole may ssm:DescribeInstanceInformation")]
    Ssm { instance_id: String, message: String },

    #[error("bastion {instance_id} has no private IP address in EC2's answer; it cannot be bound to a database account")]
    NoPrivateIp { instance_id: String },

    #[error("bastion {instance_id} did not come online in SSM within {}s: check that the AMI runs the SSM agent, that the subnet reaches SSM (VPC endpoints with private DNS for ssm, ssmmessages, logs and kms, or a NAT), and that the instance profile allows the agent (AmazonSSMManagedInstanceCore)", waited.as_secs())]
    NotOnline { instance_id: String, waited: Duration },

    #[error("the bastion {instance_id} of session {session} is {state}; a session's bastion is never launched twice: end the session and request access again")]
    Ended { session: String, instance_id: String, state: String },

    #[error("refusing to terminate {instance_id}: it is not tagged powerpole:managed=true, and powerpole terminates only its own bastions")]
    NotManaged { instance_id: String },

    #[error("refusing to terminate {instance_id}: its powerpole:deployment tag is {tagged}, and this is deployment {ours} (`[deployment] id`); each deployment terminates only its own bastions")]
    OtherDeployment { instance_id: String, tagged: String, ours: String },

    #[error("requester {requester} has no usable identity for the bastion's powerpole:identity tag ([bastion] identity_source = {identity_source:?} gives `{value}`): nobody could enter such a bastion; fix the requester's Slack profile e-mail or choose another identity_source")]
    NoIdentity { requester: String, identity_source: crate::config::IdentitySource, value: String },

    #[error("the CA bundle `{path}` cannot be put on the bastion: {reason}; fix the target's `tls_ca_bundle`")]
    CaBundle { path: String, reason: String },

    #[error("bastion {instance_id} already carries the identity `{tagged}`, not this session's requester's; a bastion never changes hands: end the session and request access again")]
    OtherIdentity { instance_id: String, tagged: String },

    #[error("`{0}` is not an EC2 instance id (i- and hex digits)")]
    InvalidInstanceId(String),
}
