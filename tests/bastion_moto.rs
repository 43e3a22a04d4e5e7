//! The bastion adapter against moto (EC2, SSM Parameter Store) and the SSM stand-in
//! (`DescribeInstanceInformation`): the launch parameters as EC2 reports them back, idempotent
//! launch and terminate, and the online wait. Run with the stand-ins up (`make test`).
//!
//! Every test makes its own VPC, subnet, security group and instance profile with random names,
//! because moto is shared with other engineers' tests; nothing here resets moto.

mod world;

use world::create_instance_profile;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, HttpTokensState, InstanceAttributeName, VolumeType};
use base64::Engine;
use rand::RngExt;

use powerpole::bastion::{launch::USER_DATA, tags, BastionError, Bastions, Ec2Bastions, InstanceState, LaunchSpec};
use powerpole::config::{BastionConfig, IdentitySource};
use powerpole::domain::{AccessDuration, SessionId, SlackUserId, TargetName};
use powerpole_standins::ssm::SsmStandin;

const AL2023: &str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// Bastions with instance profile `profile`, the e-mail as identity, 12 GiB root volumes.
fn bastion_config(profile: &str) -> BastionConfig {
    BastionConfig {
        instance_type: "t3.micro".into(),
        instance_profile: profile.to_string(),
        ami_parameter: AL2023.into(),
        root_volume_gib: 12,
        ssm_online_timeout: AccessDuration::from_secs(300).expect("5 minutes"),
        identity_source: IdentitySource::Email,
        session_document: "powerpole-session".into(),
        home_domains: vec!["example.com".into()],
    }
}

fn moto_url() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("AWS_ENDPOINT_URL is not set: these tests need moto; run `make test`, or `scripts/standins.sh start` and `source .local/standins.env`"),
    }
}

fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
}

fn suffix() -> String {
    let mut rng = rand::rng();
    (0..8).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])).collect()
}

/// moto answers calls it lacks with an HTML 500, which the SDK would retry at length.
fn ec2_client(endpoint: &str) -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "powerpole-tests"))
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

fn ssm_client(endpoint: &str) -> aws_sdk_ssm::Client {
    use aws_sdk_ssm::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "powerpole-tests"))
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

/// A private network and an instance profile in moto, and the adapter pointed at them.
struct World {
    ec2: aws_sdk_ec2::Client,
    ssm: SsmStandin,
    bastions: Ec2Bastions,
    subnet_id: String,
    subnet_prefix: String,
    security_group_id: String,
    profile: String,
}

/// moto is shared: a test's instances must not outlive it, or another test listing powerpole's
/// bastions would find them. Terminating twice is harmless, so everything in the test's own
/// subnet is terminated, whatever the test did already.
impl Drop for World {
    fn drop(&mut self) {
        let (ec2, subnet_id) = (self.ec2.clone(), self.subnet_id.clone());
        // Drop cannot await, and the test's runtime is busy dropping us: use a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let filter = Filter::builder().name("subnet-id").values(&subnet_id).build();
                let Ok(answer) = ec2.describe_instances().filters(filter).send().await else { return };
                let ids: Vec<String> =
                    answer.reservations().iter().flat_map(|r| r.instances()).filter_map(|i| i.instance_id()).map(str::to_string).collect();
                if !ids.is_empty() {
                    let _ = ec2.terminate_instances().set_instance_ids(Some(ids)).send().await;
                }
            })
        });
        let _ = cleanup.join();
    }
}

impl World {
    async fn new() -> World {
        let moto = moto_url();
        let ec2 = ec2_client(&moto);
        let ssm = SsmStandin::start(&moto).await.expect("the SSM stand-in starts");
        let octet = rand::rng().random_range(0..=255u8);
        let vpc = ec2.create_vpc().cidr_block(format!("10.{octet}.0.0/16")).send().await.expect("moto creates a VPC");
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("a VPC id").to_string();
        let subnet = ec2.create_subnet().vpc_id(&vpc_id).cidr_block(format!("10.{octet}.7.0/24")).send().await.expect("moto creates a subnet");
        let subnet_id = subnet.subnet().and_then(|s| s.subnet_id()).expect("a subnet id").to_string();
        // A subnet that hands out public IPs by default: only the launch's own setting keeps one
        // off the bastion (moto honours both).
        let map_public = aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build();
        ec2.modify_subnet_attribute().subnet_id(&subnet_id).map_public_ip_on_launch(map_public).send().await.expect("moto sets MapPublicIpOnLaunch");
        let sg = ec2
            .create_security_group()
            .group_name(format!("powerpole-bastion-{}", suffix()))
            .description("bastions: no inbound rules")
            .vpc_id(&vpc_id)
            .send()
            .await
            .expect("moto creates a security group");
        let profile = format!("powerpole-bastion-{}", suffix());
        create_instance_profile(&moto, &profile).await;
        let config = bastion_config(&profile);
        let bastions = Ec2Bastions::new(ec2.clone(), ssm_client(&ssm.url()), config).with_poll_interval(Duration::from_millis(50));
        World {
            ec2,
            ssm,
            bastions,
            subnet_id,
            subnet_prefix: format!("10.{octet}.7."),
            security_group_id: sg.group_id().expect("a group id").to_string(),
            profile,
        }
    }

    /// The configuration the world's bastions were made with.
    fn bastions_config(&self) -> BastionConfig {
        bastion_config(&self.profile)
    }

    fn spec(&self) -> LaunchSpec {
        LaunchSpec {
            session: SessionId::random(),
            requester: SlackUserId::parse("U0REQUESTER").expect("a Slack user id"),
            requester_email: "Requester@example.com".into(),
            target: TargetName::parse("billing").expect("a target name"),
            subnet_id: self.subnet_id.clone(),
            security_group_id: self.security_group_id.clone(),
            ami: None,
            instance_type: None,
            ca_bundle: None,
            identity_at_launch: true,
        }
    }

    async fn describe(&self, id: &str) -> aws_sdk_ec2::types::Instance {
        let answer = self.ec2.describe_instances().instance_ids(id).send().await.expect("DescribeInstances");
        answer.reservations()[0].instances()[0].clone()
    }

    /// Instances carrying the session's tag, in any state.
    async fn tagged(&self, session: &SessionId) -> Vec<aws_sdk_ec2::types::Instance> {
        let filter = Filter::builder().name(format!("tag:{}", tags::SESSION)).values(session.as_str()).build();
        let answer = self.ec2.describe_instances().filters(filter).send().await.expect("DescribeInstances");
        answer.reservations().iter().flat_map(|r| r.instances()).cloned().collect()
    }
}

#[tokio::test]
async fn launch_sets_every_parameter_and_ec2_reports_them_back() {
    let world = World::new().await;
    let spec = world.spec();

    let started = Instant::now();
    let launched = world.bastions.launch(&spec).await.expect("launch");
    eprintln!("launch: {} ms", started.elapsed().as_millis());

    let i = world.describe(&launched.id).await;
    let ami = ssm_client(&world.ssm.url()).get_parameter().name(AL2023).send().await.expect("moto serves the public AL2023 parameter");
    assert_eq!(i.image_id(), ami.parameter().and_then(|p| p.value()), "the AMI comes from the public parameter");
    assert_eq!(i.instance_type().map(|t| t.as_str()), Some("t3.micro"));
    assert_eq!(i.subnet_id(), Some(world.subnet_id.as_str()));
    let groups: Vec<&str> = i.network_interfaces().iter().flat_map(|n| n.groups()).filter_map(|g| g.group_id()).collect();
    assert_eq!(groups, [world.security_group_id.as_str()]);
    assert_eq!(i.public_ip_address(), None, "no public IP, although the subnet maps one by default");
    assert!(i.network_interfaces().iter().all(|n| n.association().and_then(|a| a.public_ip()).is_none()));
    assert_eq!(i.key_name(), None, "no key pair");
    let private_ip = i.private_ip_address().expect("a private IP");
    assert_eq!(private_ip, launched.private_ip.to_string(), "launch returns the private IP");
    assert!(private_ip.starts_with(&world.subnet_prefix), "{private_ip} is in the subnet");
    let md = i.metadata_options().expect("metadata options");
    assert_eq!(md.http_tokens(), Some(&HttpTokensState::Required), "IMDSv2 only");
    assert_eq!(md.http_put_response_hop_limit(), Some(1));
    let profile_arn = i.iam_instance_profile().and_then(|p| p.arn()).expect("an instance profile");
    assert!(profile_arn.ends_with(&format!("/{}", world.profile)), "{profile_arn}");
    let tags: Vec<(&str, &str)> = i.tags().iter().map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))).collect();
    let name = format!("powerpole-{}", spec.session);
    for expected in [
        (tags::SESSION, spec.session.as_str()),
        (tags::REQUESTER, "U0REQUESTER"),
        (tags::IDENTITY, "Requester@example.com"),
        (tags::TARGET, "billing"),
        (tags::MANAGED, "true"),
        ("Name", name.as_str()),
    ] {
        assert!(tags.contains(&expected), "{expected:?} in {tags:?}");
    }

    let attribute = |name| world.ec2.describe_instance_attribute().instance_id(&launched.id).attribute(name).send();
    let user_data = attribute(InstanceAttributeName::UserData).await.expect("userData");
    let encoded = user_data.user_data().and_then(|v| v.value()).expect("user data is set");
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
    assert_eq!(String::from_utf8_lossy(&decoded), USER_DATA);
    let shutdown = attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior).await.expect("shutdown behaviour");
    assert_eq!(shutdown.instance_initiated_shutdown_behavior().and_then(|v| v.value()), Some("terminate"));

    let root = &i.block_device_mappings()[0];
    assert_eq!(root.device_name(), Some("/dev/xvda"), "the settings apply to the AMI's root device");
    assert_eq!(root.ebs().and_then(|e| e.delete_on_termination()), Some(true));
    let volume_id = root.ebs().and_then(|e| e.volume_id()).expect("a root volume");
    let volumes = world.ec2.describe_volumes().volume_ids(volume_id).send().await.expect("DescribeVolumes");
    let v = &volumes.volumes()[0];
    assert_eq!(v.encrypted(), Some(true));
    assert_eq!(v.volume_type(), Some(&VolumeType::Gp3));
    assert_eq!(v.size(), Some(12), "the size comes from config");
    let volume_tags: Vec<(&str, &str)> = v.tags().iter().map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))).collect();
    assert!(volume_tags.contains(&(tags::SESSION, spec.session.as_str())), "the root volume carries the session tag: {volume_tags:?}");
}

#[tokio::test]
async fn a_second_launch_after_a_crash_returns_the_same_instance() {
    let world = World::new().await;
    let spec = world.spec();

    let first = world.bastions.launch(&spec).await.expect("first launch").id;
    // The crash: the id was never stored. The retry must find the instance, not launch another.
    let second = world.bastions.launch(&spec).await.expect("second launch");

    assert_eq!(second.id, first);
    let tagged = world.tagged(&spec.session).await;
    assert_eq!(tagged.len(), 1, "exactly one instance carries the session tag");
    assert_eq!(world.bastions.find(&spec.session).await.expect("find").map(|i| i.id), Some(first));
}

#[tokio::test]
async fn terminate_twice_and_terminate_unknown_are_done() {
    let world = World::new().await;
    let spec = world.spec();
    let id = world.bastions.launch(&spec).await.expect("launch").id;

    world.bastions.terminate(&id).await.expect("terminate");
    world.bastions.terminate(&id).await.expect("terminate again");
    world.bastions.terminate("i-0123456789abcdef0").await.expect("an id EC2 never knew");

    assert_eq!(world.describe(&id).await.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("terminated"));
    assert_eq!(world.bastions.find(&spec.session).await.expect("find"), None, "a terminated bastion is not found");
    // A relaunch is not asserted: moto ignores ClientToken and launches anew, where AWS would
    // answer with the terminated instance, which `launch` refuses with BastionError::Ended.
}

#[tokio::test]
async fn terminate_refuses_instances_powerpole_did_not_launch() {
    let world = World::new().await;
    let foreign = world
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .subnet_id(&world.subnet_id)
        .send()
        .await
        .expect("someone else's instance");
    let id = foreign.instances()[0].instance_id().expect("an id").to_string();

    let refused = world.bastions.terminate(&id).await;

    assert!(matches!(refused, Err(BastionError::NotManaged { .. })), "{refused:?}");
    assert_eq!(world.describe(&id).await.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("running"));
    assert!(matches!(world.bastions.terminate("not-an-id").await, Err(BastionError::InvalidInstanceId(_))));
}

#[tokio::test]
async fn wait_online_returns_once_the_agent_reports_online() {
    let world = World::new().await;
    let id = world.bastions.launch(&world.spec()).await.expect("launch").id;
    world.ssm.online_after(Duration::from_secs(1));

    let started = Instant::now();
    world.bastions.wait_online(&id, Duration::from_secs(30)).await.expect("online");
    eprintln!("wait_online with the agent online 1 s after launch: {} ms", started.elapsed().as_millis());

}

#[tokio::test]
async fn wait_online_times_out_with_a_typed_error_while_the_agent_stays_offline() {
    let world = World::new().await;
    let id = world.bastions.launch(&world.spec()).await.expect("launch").id;
    world.ssm.hold_offline(&id);

    let started = Instant::now();
    let result = world.bastions.wait_online(&id, Duration::from_millis(600)).await;
    let waited = started.elapsed();

    let err = result.expect_err("the agent never comes online");
    assert!(matches!(&err, BastionError::NotOnline { instance_id, .. } if *instance_id == id), "{err:?}");
    assert!(waited >= Duration::from_millis(600) && waited < Duration::from_secs(3), "{waited:?}");
    let text = err.to_string();
    for hint in ["SSM agent", "VPC endpoints", "instance profile"] {
        assert!(text.contains(hint), "{text}");
    }
}

/// Bastions booting at the same time are asked about in one call per poll: SSM throttles
/// `DescribeInstanceInformation` per account, so the calls follow the clock, not the number of
/// bastions; each wait still ends when its own agent is online, and not before.
#[tokio::test]
async fn bastions_booting_together_are_polled_together_and_each_wait_ends_with_its_own_agent() {
    let world = World::new().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let id = world.bastions.launch(&world.spec()).await.expect("launch").id;
        world.ssm.hold_offline(&id);
        ids.push(id);
    }
    let before = world.ssm.describe_calls();
    let online: std::sync::Mutex<Vec<String>> = Default::default();
    let (world, online) = (&world, &online);
    let waits = futures::future::join_all(ids.iter().map(|id| {
        async move {
            let result = world.bastions.wait_online(id, Duration::from_secs(30)).await;
            online.lock().unwrap().push(id.clone());
            result
        }
    }));
    // The agents come online one after another: SSM is asked twice more with the rest offline
    // (no wait may end), then one agent is released and its wait is let end.
    let agents = async {
        for (n, id) in ids.iter().enumerate() {
            let asked = world.ssm.describe_calls();
            while world.ssm.describe_calls() < asked + 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(online.lock().unwrap().len(), n, "no wait ended before its agent was online");
            world.ssm.release(id);
            while online.lock().unwrap().len() == n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let (results, ()) = tokio::join!(waits, agents);

    for (id, result) in ids.iter().zip(&results) {
        assert!(result.is_ok(), "{id}: {result:?}");
    }
    assert_eq!(*online.lock().unwrap(), ids, "each wait ended when its own agent came online");
    // Every call asked about every bastion still waited for (the agents came online in order,
    // so those are the last ones): four bastions polled apart would be asked about one by one.
    let asked: Vec<std::collections::BTreeSet<String>> = world.ssm.asked()[before..].iter().map(|call| call.iter().cloned().collect()).collect();
    let still_waited: Vec<std::collections::BTreeSet<String>> = (0..ids.len()).map(|n| ids[n..].iter().cloned().collect()).collect();
    for call in &asked {
        assert!(still_waited.contains(call), "a call asked about {call:?}, not about every bastion waited for: {asked:?}");
    }
    assert!(asked.iter().filter(|call| call.len() == ids.len()).count() >= 2, "{asked:?}");
}

#[tokio::test]
async fn list_managed_shows_live_bastions_with_their_session() {
    let world = World::new().await;
    let (live, gone) = (world.spec(), world.spec());
    let live_id = world.bastions.launch(&live).await.expect("launch").id;
    let gone_id = world.bastions.launch(&gone).await.expect("launch").id;
    world.bastions.terminate(&gone_id).await.expect("terminate");

    let managed = world.bastions.list_managed().await.expect("list_managed");

    let mine = managed.iter().find(|m| m.id == live_id).expect("the live bastion is listed");
    assert_eq!(mine.session.as_deref(), Some(live.session.as_str()));
    assert_eq!(mine.target.as_deref(), Some("billing"));
    assert_eq!(mine.state, InstanceState::Running);
    assert!(mine.launched_at.is_some());
    assert!(!managed.iter().any(|m| m.id == gone_id), "terminated bastions are not listed");
}

#[tokio::test]
async fn a_targets_own_ami_wins_and_a_missing_parameter_says_what_to_check() {
    let world = World::new().await;
    let mut spec = world.spec();
    // One of moto's stock AMIs, whose root device is /dev/sda1, not AL2023's /dev/xvda.
    spec.ami = Some("ami-12c6146b".into());
    let own = world.bastions.launch(&spec).await.expect("launch with the target's AMI");
    let i = world.describe(&own.id).await;
    assert_eq!(i.image_id(), Some("ami-12c6146b"));
    let image = world.ec2.describe_images().image_ids("ami-12c6146b").send().await.expect("DescribeImages");
    let root_device = image.images()[0].root_device_name();
    assert_eq!(i.block_device_mappings()[0].device_name(), root_device, "the volume settings follow the AMI's root device");

    let broken = Ec2Bastions::new(
        world.ec2.clone(),
        ssm_client(&world.ssm.url()),
        BastionConfig {
            instance_type: "t3.micro".into(),
            instance_profile: world.profile.clone(),
            ami_parameter: format!("/powerpole/test/no-such-{}", suffix()),
            root_volume_gib: 8,
            ssm_online_timeout: AccessDuration::from_secs(300).expect("5 minutes"),
            identity_source: IdentitySource::Email,
            session_document: "powerpole-session".into(),
            home_domains: vec!["example.com".into()],
        },
    );
    let err = broken.launch(&world.spec()).await.expect_err("no AMI, no launch");
    assert!(matches!(err, BastionError::AmiParameter { .. }), "{err:?}");
    assert!(err.to_string().contains("ssm:GetParameter"), "{err}");
}

#[tokio::test]
async fn the_identity_tag_follows_the_configured_source_and_a_launch_without_one_is_refused() {
    let world = World::new().await;
    let with_source = |source| {
        let mut config = world.bastions_config();
        config.identity_source = source;
        Ec2Bastions::new(world.ec2.clone(), ssm_client(&world.ssm.url()), config)
    };
    let identity_of = |i: &aws_sdk_ec2::types::Instance| {
        i.tags().iter().find(|t| t.key() == Some(tags::IDENTITY)).and_then(|t| t.value()).map(str::to_string)
    };

    let by_name = with_source(IdentitySource::EmailLocalPart).launch(&world.spec()).await.expect("launch");
    assert_eq!(identity_of(&world.describe(&by_name.id).await).as_deref(), Some("Requester"));
    let by_slack_id = with_source(IdentitySource::SlackUserId).launch(&world.spec()).await.expect("launch");
    assert_eq!(identity_of(&world.describe(&by_slack_id.id).await).as_deref(), Some("U0REQUESTER"));

    // No e-mail, no identity: nobody could enter such a bastion, so none is launched.
    let spec = LaunchSpec { requester_email: String::new(), ..world.spec() };
    let err = with_source(IdentitySource::Email).launch(&spec).await.expect_err("no identity, no launch");
    assert!(matches!(err, BastionError::NoIdentity { .. }), "{err:?}");
    assert!(err.to_string().contains("identity_source"), "{err}");
    assert!(world.tagged(&spec.session).await.is_empty(), "nothing was launched");
}

#[tokio::test]
async fn a_launch_on_request_gets_its_identity_only_at_approval_and_never_another_one() {
    let world = World::new().await;
    let identity_of = |i: &aws_sdk_ec2::types::Instance| i.tags().iter().find(|t| t.key() == Some(tags::IDENTITY)).and_then(|t| t.value()).map(str::to_string);
    let spec = world.spec().without_identity();

    let early = world.bastions.launch(&spec).await.expect("launch");
    assert_eq!(identity_of(&world.describe(&early.id).await), None, "nobody may enter before approval");
    // Provisioning's launch of the same session finds the same instance.
    assert_eq!(world.bastions.launch(&spec).await.expect("launch again").id, early.id);

    world.bastions.set_identity(&early.id, &spec).await.expect("tag at approval");
    assert_eq!(identity_of(&world.describe(&early.id).await).as_deref(), Some("Requester@example.com"));
    // A retry (its first answer lost) is done; another person's identity is refused.
    world.bastions.set_identity(&early.id, &spec).await.expect("the same identity again is done");
    let someone_else = LaunchSpec { requester_email: "mallory@example.com".into(), ..spec.clone() };
    let err = world.bastions.set_identity(&early.id, &someone_else).await.expect_err("a bastion never changes hands");
    assert!(matches!(err, BastionError::OtherIdentity { .. }), "{err:?}");
    assert_eq!(identity_of(&world.describe(&early.id).await).as_deref(), Some("Requester@example.com"));
    // Another session's spec cannot tag this instance, and a terminated one is never tagged.
    let other_session = LaunchSpec { session: SessionId::random(), ..spec.clone() };
    assert!(world.bastions.set_identity(&early.id, &other_session).await.is_err());
    let denied = world.spec().without_identity();
    let second = world.bastions.launch(&denied).await.expect("launch");
    world.bastions.terminate(&second.id).await.expect("terminate");
    let ended = world.bastions.set_identity(&second.id, &denied).await.expect_err("a terminated bastion is never tagged");
    assert!(matches!(ended, BastionError::Ended { .. }), "{ended:?}");
    assert_eq!(identity_of(&world.describe(&second.id).await), None);
}
