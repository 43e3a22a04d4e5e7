//! `powerpole doctor`, run as an operator would: a healthy setup passes every check, and each
//! broken piece is named with what to fix.

mod world;

use world::{Options, World};

fn doctor(world: &World, config_text: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("powerpole-doctor-{}-{}", world.id, world::suffix()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("powerpole.toml");
    std::fs::write(&file, config_text).expect("write the config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_powerpole"))
        .args(["doctor", "--config"])
        .arg(&file)
        .envs(world.process_env())
        .output()
        .expect("run powerpole doctor");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_setup_passes_every_check() {
    let world = World::new(Options::default()).await;
    let (code, out) = doctor(&world, &world.config_text());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok    slack bot token: bot"), "{out}");
    assert!(out.contains(&format!("ok    dynamodb: table `{}` matches the schema; TTL on", world.table)), "{out}");
    assert!(out.contains("ok    target billing: network: subnet"), "{out}");
    assert!(out.contains("ok    target billing: database: admin"), "{out}");
    assert!(out.contains("ok    slack scopes: all 10 needed scope(s) granted"), "{out}");
    assert!(out.contains(&format!("ok    slack approvals channel {} (billing): the bot is a member", world::APPROVALS)), "{out}");
    assert!(out.contains("doctor: 10 check(s), 0 failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_scope_and_a_channel_without_the_bot_are_named() {
    let world = World::new(Options::default()).await;
    // Installed before powerpole needed user groups, and never invited to the approvals channel.
    world.slack.grant_scopes(&["app_mentions:read", "channels:read", "chat:write", "commands", "groups:read", "im:history", "im:write", "users:read", "users:read.email", "reactions:write"]);
    world.slack.set_bot_member(world::APPROVALS, false);
    let (code, out) = doctor(&world, &world.config_text());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  slack scopes: the bot token lacks usergroups:read: add them under OAuth & Permissions"), "{out}");
    assert!(
        out.contains(&format!("FAIL  slack approvals channel {0} (billing): the bot is not a member, so approval cards cannot be posted: type `/invite @powerpole` in {0}", world::APPROVALS)),
        "{out}"
    );
    assert!(out.contains("doctor: 10 check(s), 2 failed"), "{out}");

    // Once fixed, both pass; a scope powerpole does not use is pointed out, not failed.
    world.slack.grant_scopes(&["app_mentions:read", "channels:read", "chat:write", "commands", "groups:read", "im:history", "im:write", "usergroups:read", "users:read", "users:read.email", "reactions:write"]);
    world.slack.set_bot_member(world::APPROVALS, true);
    let (code, out) = doctor(&world, &world.config_text());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("also granted, unused by powerpole: reactions:write"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broken_piece_is_named_with_what_to_fix() {
    let world = World::new(Options::default()).await;
    // An inbound rule on the bastion security group, a schema that does not exist, a table that
    // does not exist, and a bot token Slack refuses.
    let ec2 = &world.ec2;
    let rule = aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    ec2.authorize_security_group_ingress().group_id(&world.security_group_id).ip_permissions(rule).send().await.expect("moto adds the rule");
    let broken = world
        .config_text()
        .replace(&format!("schemas = [\"{}\"]", world.schema), &format!("schemas = [\"{}\", \"nosuchschema\"]", world.schema))
        .replace(&format!("table = \"{}\"", world.table), "table = \"powerpole-no-such-table\"")
        .replace("bot_token = { env = \"SLACK_BOT_TOKEN\" }", "bot_token = { env = \"POWERPOLE_DOCTOR_BAD_TOKEN\" }");
    std::env::set_var("POWERPOLE_DOCTOR_BAD_TOKEN", "not-a-bot-token");
    let (code, out) = doctor(&world, &broken);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  slack bot token:"), "{out}");
    assert!(out.contains("FAIL  dynamodb: table `powerpole-no-such-table` cannot be described"), "{out}");
    assert!(out.contains("has 1 inbound rule(s): bastions are reached through Session Manager only; remove them"), "{out}");
    assert!(out.contains("missing: nosuchschema (fix `schemas` in the config)"), "{out}");
    assert!(out.contains("doctor: 7 check(s), 4 failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_group_the_configuration_names_must_exist_in_slack() {
    let world = World::new(Options::default()).await;
    world.slack.add_group("S0ENG", &[world::ALICE]);
    let text = format!(
        "{}\n[targets.billing.policy]\neligible_groups = [\"S0ENG\"]\n[targets.billing.policy.DDL]\napprover_groups = [\"S0NOPE\"]\n",
        world.config_text()
    );
    let (code, out) = doctor(&world, &text);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ok    slack user group S0ENG (targets.billing.policy.eligible_groups): exists, 1 member(s)"), "{out}");
    assert!(out.contains("FAIL  slack user group S0NOPE (targets.billing.policy.DDL.approver_groups): Slack has no such user group"), "{out}");
}
