//! The parameters of `RunInstances` for a bastion, one function per concern so that each can be
//! read (and tested) on its own.

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceMetadataTagsState, InstanceNetworkInterfaceSpecification, ResourceType, Tag,
    TagSpecification, VolumeType,
};
use base64::Engine;

use super::{tags, BastionError, LaunchSpec};
use crate::domain::DeploymentId;

/// The bastion's user data (`user-data.sh`, run and checked by infra/tests/user_data_test.sh):
/// sessions run as an unprivileged user, ssm-user has no sudo, only root reaches the instance
/// metadata, and a MySQL client is installed. (Amazon Linux 2023 ships the SSM agent.) dnf reads
/// the AL2023 repositories from S3, so a private subnet without a NAT needs the S3 gateway
/// endpoint for this to succeed.
pub const USER_DATA: &str = include_str!("user-data.sh");

/// The local user sessions run as: the `runAsDefaultUser` of powerpole's session document
/// (infra/modules/powerpole/session_document.tf), created by [`USER_DATA`].
pub const SESSION_USER: &str = "powerpole-session";

/// The AMI's root device when `DescribeImages` does not say (Amazon Linux 2023's).
pub const DEFAULT_ROOT_DEVICE: &str = "/dev/xvda";

/// `USER_DATA`, base64-encoded as `RunInstances` expects it from SDK callers.
pub fn user_data() -> String {
    base64::engine::general_purpose::STANDARD.encode(USER_DATA)
}

/// Where the bastion keeps the target's CA bundle, for the hand-over's `mysql --ssl-ca=...`.
pub const BASTION_CA_BUNDLE: &str = "/etc/powerpole/rds-ca-bundle.pem";

/// User data is at most 16 KB; the script takes a few. RDS's per-region bundles are a few KB,
/// its global bundle (~160 KB) does not fit: name the region's in `tls_ca_bundle`.
const MAX_CA_BUNDLE: usize = 12 * 1024;

/// The CA bundle the bastion's client checks the server with: the target's own (the one the
/// admin connection verifies with), when its accounts require TLS.
pub fn bastion_ca_bundle(target: &crate::config::TargetConfig) -> Option<&std::path::Path> {
    match (&target.admin_tls, target.require_ssl) {
        (crate::config::AdminTls::Verify { ca_bundle }, true) => Some(ca_bundle.as_path()),
        _ => None,
    }
}

/// `USER_DATA` with the target's CA bundle written to [`BASTION_CA_BUNDLE`] first (a heredoc
/// with a quoted delimiter, so nothing in the PEM is expanded; no download at boot), base64-encoded.
pub fn user_data_with_ca(ca_bundle: Option<&std::path::Path>) -> Result<String, BastionError> {
    let Some(path) = ca_bundle else { return Ok(user_data()) };
    let pem = std::fs::read_to_string(path).map_err(|e| BastionError::CaBundle { path: path.display().to_string(), reason: e.to_string() })?;
    let pem = pem.trim();
    if pem.len() > MAX_CA_BUNDLE || !pem.starts_with("-----BEGIN CERTIFICATE-----") || pem.contains("POWERPOLE_CA_EOF") {
        let reason = format!("not a PEM certificate bundle of at most {MAX_CA_BUNDLE} bytes (use your region's RDS bundle, not the global one)");
        return Err(BastionError::CaBundle { path: path.display().to_string(), reason });
    }
    let (shebang, script) = USER_DATA.split_once('\n').unwrap_or(("#!/bin/bash", USER_DATA));
    let ca = format!("install -d -m 0755 /etc/powerpole\ncat > {BASTION_CA_BUNDLE} <<'POWERPOLE_CA_EOF'\n{pem}\nPOWERPOLE_CA_EOF\nchmod 0644 {BASTION_CA_BUNDLE}\n");
    Ok(base64::engine::general_purpose::STANDARD.encode(format!("{shebang}\n{ca}{script}")))
}

/// The `Name` tag: what a person sees in the console.
pub fn name(spec: &LaunchSpec) -> String {
    format!("powerpole-{}", spec.session)
}

/// The session's tags, on the instance and on its root volume, with the deployment that owns it.
/// `identity` is the requester's identity tag value ([`super::identity::identity`]).
pub fn tag_specifications(spec: &LaunchSpec, identity: &str, deployment: &DeploymentId) -> Vec<TagSpecification> {
    // One (key, value) per line, so a tag is added by adding a line.
    let mut tags = vec![
        (tags::SESSION, spec.session.to_string()),
        (tags::REQUESTER, spec.requester.to_string()),
        (tags::IDENTITY, identity.to_string()),
        (tags::TARGET, spec.target.to_string()),
        (tags::MANAGED, "true".to_string()),
        (tags::DEPLOYMENT, deployment.to_string()),
        ("Name", name(spec)),
    ];
    // Launch on request: no identity until approval, so nobody's StartSession matches the instance.
    if !spec.identity_at_launch {
        tags.retain(|(key, _)| *key != tags::IDENTITY);
    }
    [ResourceType::Instance, ResourceType::Volume]
        .into_iter()
        .map(|kind| {
            let list = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect();
            TagSpecification::builder().resource_type(kind).set_tags(Some(list)).build()
        })
        .collect()
}

/// One interface in the target's private subnet and bastion security group; never a public IP.
pub fn network_interface(spec: &LaunchSpec) -> InstanceNetworkInterfaceSpecification {
    InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(&spec.subnet_id)
        .groups(&spec.security_group_id)
        .associate_public_ip_address(false)
        .delete_on_termination(true)
        .build()
}

/// IMDSv2 only, and a hop limit of 1 so that nothing forwarded (a container) reaches the
/// instance credentials.
pub fn metadata_options() -> InstanceMetadataOptionsRequest {
    InstanceMetadataOptionsRequest::builder()
        .http_endpoint(InstanceMetadataEndpointState::Enabled)
        .http_tokens(HttpTokensState::Required)
        .http_put_response_hop_limit(1)
        .instance_metadata_tags(InstanceMetadataTagsState::Disabled)
        .build()
}

/// An encrypted gp3 root volume (the account's default EBS key), deleted with the instance.
pub fn root_volume(device_name: &str, size_gib: u32) -> BlockDeviceMapping {
    let ebs = EbsBlockDevice::builder()
        .volume_type(VolumeType::Gp3)
        .volume_size(i32::try_from(size_gib).unwrap_or(8))
        .encrypted(true)
        .delete_on_termination(true)
        .build();
    BlockDeviceMapping::builder().device_name(device_name).ebs(ebs).build()
}

/// The bastion instance profile, by ARN when config gives one, else by name.
pub fn instance_profile(profile: &str) -> IamInstanceProfileSpecification {
    let builder = IamInstanceProfileSpecification::builder();
    if profile.starts_with("arn:") {
        builder.arn(profile).build()
    } else {
        builder.name(profile).build()
    }
}

/// The AMI: the target's own, else the id in the public SSM parameter.
pub async fn resolve_ami(ssm: &aws_sdk_ssm::Client, spec: &LaunchSpec, parameter: &str) -> Result<String, BastionError> {
    if let Some(ami) = &spec.ami {
        return Ok(ami.clone());
    }
    let failed = |message: String| BastionError::AmiParameter { parameter: parameter.to_string(), message };
    let answer = ssm
        .get_parameter()
        .name(parameter)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_ssm::error::DisplayErrorContext(&e).to_string()))?;
    answer
        .parameter()
        .and_then(|p| p.value())
        .filter(|v| v.starts_with("ami-"))
        .map(str::to_string)
        .ok_or_else(|| failed("the parameter does not hold an AMI id (ami-...)".into()))
}

/// The AMI's root device name, so that the volume settings apply to the root volume instead of
/// adding a second one.
pub async fn root_device(ec2: &aws_sdk_ec2::Client, ami: &str) -> Result<String, BastionError> {
    let answer = ec2.describe_images().image_ids(ami).send().await.map_err(|e| BastionError::Ec2 {
        action: "DescribeImages",
        message: aws_sdk_ec2::error::DisplayErrorContext(&e).to_string(),
    })?;
    let image = answer.images().first().ok_or_else(|| BastionError::Ec2 {
        action: "DescribeImages",
        message: format!("AMI {ami} is not visible to this account in this region"),
    })?;
    Ok(image.root_device_name().unwrap_or(DEFAULT_ROOT_DEVICE).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SessionId, SlackUserId, TargetName};

    fn spec() -> LaunchSpec {
        LaunchSpec {
            session: SessionId::parse("pp-abcdefghij").unwrap(),
            requester: SlackUserId::parse("U0ALICE").unwrap(),
            requester_email: "alice@example.com".into(),
            target: TargetName::parse("billing").unwrap(),
            subnet_id: "subnet-1".into(),
            security_group_id: "sg-1".into(),
            ami: None,
            instance_type: None,
            ca_bundle: None,
            identity_at_launch: true,
        }
    }

    #[test]
    fn the_ca_bundle_is_written_before_the_script_runs_and_a_bad_one_refused() {
        let dir = std::env::temp_dir().join(format!("pp-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("eu-west-1-bundle.pem");
        std::fs::write(&good, "-----BEGIN CERTIFICATE-----\nMIIB$(rm -rf /)\n-----END CERTIFICATE-----\n").unwrap();
        let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(user_data_with_ca(Some(&good)).unwrap()).unwrap()).unwrap();
        assert!(decoded.starts_with("#!/bin/bash\ninstall -d -m 0755 /etc/powerpole\ncat > /etc/powerpole/rds-ca-bundle.pem <<'POWERPOLE_CA_EOF'\n-----BEGIN CERTIFICATE-----"), "{decoded}");
        assert!(decoded.ends_with(USER_DATA.split_once('\n').unwrap().1), "the script follows unchanged");
        let global = dir.join("global-bundle.pem");
        std::fs::write(&global, format!("-----BEGIN CERTIFICATE-----\n{}", "A".repeat(20_000))).unwrap();
        assert!(matches!(user_data_with_ca(Some(&global)), Err(BastionError::CaBundle { .. })));
        assert!(matches!(user_data_with_ca(Some(&dir.join("missing.pem"))), Err(BastionError::CaBundle { .. })));
        assert_eq!(user_data_with_ca(None).unwrap(), user_data());
    }

    #[test]
    fn user_data_is_the_script_and_creates_the_session_user() {
        let decoded = base64::engine::general_purpose::STANDARD.decode(user_data()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), USER_DATA);
        assert!(USER_DATA.starts_with("#!/bin/bash\n"));
        // What it does is tested by running it: infra/tests/user_data_test.sh.
        assert!(USER_DATA.lines().any(|l| l == format!("SESSION_USER={SESSION_USER}")), "the script creates {SESSION_USER}");
    }

    #[test]
    fn instance_and_volume_carry_the_session_tags() {
        let specs = tag_specifications(&spec(), "alice@example.com", &DeploymentId::parse("staging").unwrap());
        assert_eq!(specs.len(), 2);
        for s in &specs {
            let tags: Vec<(&str, &str)> = s.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
            assert_eq!(
                tags,
                [
                    ("powerpole:session", "pp-abcdefghij"),
                    ("powerpole:requester", "U0ALICE"),
                    ("powerpole:identity", "alice@example.com"),
                    ("powerpole:target", "billing"),
                    ("powerpole:managed", "true"),
                    ("powerpole:deployment", "staging"),
                    ("Name", "powerpole-pp-abcdefghij"),
                ]
            );
        }
    }

    #[test]
    fn a_launch_on_request_carries_no_identity_on_the_instance_or_its_volume() {
        let specs = tag_specifications(&spec().without_identity(), "alice@example.com", &DeploymentId::parse("staging").unwrap());
        assert_eq!(specs.len(), 2);
        for s in &specs {
            let keys: Vec<&str> = s.tags().iter().filter_map(|t| t.key()).collect();
            assert!(!keys.contains(&"powerpole:identity"), "{keys:?}");
            assert!(keys.contains(&"powerpole:session") && keys.contains(&"powerpole:deployment"), "{keys:?}");
        }
    }

    #[test]
    fn profiles_go_by_arn_or_name() {
        assert_eq!(instance_profile("powerpole-bastion").name(), Some("powerpole-bastion"));
        let arn = "arn:aws:iam::123456789012:instance-profile/powerpole-bastion";
        assert_eq!(instance_profile(arn).arn(), Some(arn));
    }

    #[test]
    fn no_public_ip_and_imdsv2_with_one_hop() {
        let nic = network_interface(&spec());
        assert_eq!(nic.associate_public_ip_address(), Some(false));
        let md = metadata_options();
        assert_eq!(md.http_tokens(), Some(&HttpTokensState::Required));
        assert_eq!(md.http_put_response_hop_limit(), Some(1));
    }
}
