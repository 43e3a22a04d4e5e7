//! What moto does not evaluate in the deployment test (conditions, resource tags, the resources
//! of most services: see `src/policy.rs`), checked on the policies exactly as the module renders
//! them, against the names the code itself uses (tag keys, the requester index).

use powerpole::bastion::tags;
use powerpole_deployment_test::model::{template_vars, NAME_PREFIX};
use powerpole_deployment_test::policy::{allows, statement};
use powerpole_deployment_test::{module_dir, terraform};
use serde_json::{json, Value};

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";
const SLACK: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/slack-AbCdEf";
const ADMIN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/targets/billing/admin-GhIjKl";

fn rendered(file: &str) -> Value {
    let vars = template_vars(REGION, "powerpole", SLACK, ADMIN, "subnet-0a1", "sg-0b1", "subnet-0c1", "sg-0d1");
    terraform::policy(&module_dir(), file, &vars).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn launching_a_bastion_is_allowed_only_in_the_approved_shape_tagged_for_this_deployment() {
    let p = rendered("orchestrator.json");
    let run = &statement(&p, "RunBastionOnlyWithTheApprovedShapeInBastionSubnetsAndGroups")["Condition"];
    assert_eq!(run["StringEqualsIfExists"]["ec2:InstanceType"], json!(["t3.micro"]));
    assert_eq!(run["StringEqualsIfExists"]["ec2:SubnetID"], json!(["subnet-0a1"]));
    assert_eq!(run["StringEqualsIfExists"]["ec2:SecurityGroupID"], json!(["sg-0b1"]));
    assert_eq!(run["BoolIfExists"], json!({"ec2:AssociatePublicIpAddress": "false", "ec2:Encrypted": "true"}));
    // The Denies name the tags the code sets (src/bastion/mod.rs) and this deployment's id.
    let managed = &statement(&p, "DenyBastionWithoutManagedTag");
    assert_eq!((managed["Effect"].as_str(), &managed["Condition"]["StringNotEquals"][format!("aws:RequestTag/{}", tags::MANAGED)]), (Some("Deny"), &json!("true")));
    let deployment = &statement(&p, "DenyBastionOfAnotherDeployment")["Condition"]["StringNotEquals"];
    assert_eq!(deployment[format!("aws:RequestTag/{}", tags::DEPLOYMENT)], "default");
    assert_eq!(statement(&p, "DenyBastionWithoutImdsv2")["Condition"]["StringNotEquals"]["ec2:MetadataHttpTokens"], "required");
    assert_eq!(statement(&p, "DenyBastionWithoutTheBastionInstanceProfile")["Condition"]["ArnNotEquals"]["ec2:InstanceProfile"], format!("arn:aws:iam::{ACCOUNT}:instance-profile/{NAME_PREFIX}-bastion"));
    assert_eq!(statement(&p, "PassOnlyTheBastionRoleOnlyToEc2")["Condition"]["StringEquals"]["iam:PassedToService"], "ec2.amazonaws.com");
}

#[test]
fn tags_change_and_termination_only_on_this_deployments_bastions() {
    let p = rendered("orchestrator.json");
    assert_eq!(statement(&p, "TagOnlyAsPartOfRunInstances")["Condition"]["StringEquals"]["ec2:CreateAction"], "RunInstances");
    let identity = &statement(&p, "SetTheIdentityTagOnceAtApproval")["Condition"];
    assert_eq!(identity["ForAllValues:StringEquals"]["aws:TagKeys"], json!([tags::IDENTITY]));
    assert_eq!(identity["Null"][format!("aws:ResourceTag/{}", tags::IDENTITY)], "true", "set once: only where none is set");
    for sid in ["SetTheIdentityTagOnceAtApproval", "TerminateOnlyThisDeploymentsManagedInstances"] {
        let own = &statement(&p, sid)["Condition"]["StringEquals"];
        assert_eq!(own[format!("aws:ResourceTag/{}", tags::MANAGED)], "true", "{sid}");
        assert_eq!(own[format!("aws:ResourceTag/{}", tags::DEPLOYMENT)], "default", "{sid}");
    }
    let describe = &statement(&p, "DescribeActionsSupportOnlyResourceStarSoScopedToRegion")["Condition"];
    assert_eq!(describe["StringEquals"]["aws:RequestedRegion"], REGION);
}

#[test]
fn keys_are_used_only_through_the_services_that_hold_powerpoles_data() {
    for (file, sid, services) in [
        ("slack-handler.json", "UseKeyOnlyThroughDynamoDbLambdaSqsAndParameterStore", vec!["dynamodb", "lambda", "sqs", "ssm"]),
        ("orchestrator.json", "UseKeyOnlyThroughDynamoDbLambdaSqsAndParameterStore", vec!["dynamodb", "lambda", "sqs", "ssm"]),
        ("export.json", "UseKeyOnlyThroughDynamoDbS3AndSqs", vec!["dynamodb", "s3", "sqs"]),
    ] {
        let p = rendered(file);
        let via = statement(&p, sid)["Condition"]["StringEquals"]["kms:ViaService"].clone();
        let expected: Vec<String> = services.iter().map(|s| format!("{s}.{REGION}.amazonaws.com")).collect();
        assert_eq!(via, json!(expected), "{file}");
        if file != "export.json" {
            let secrets = statement(&p, "DecryptSecretsOnlyThroughSecretsManager");
            assert_eq!(secrets["Condition"]["StringEquals"]["kms:ViaService"], format!("secretsmanager.{REGION}.amazonaws.com"), "{file}");
        }
    }
}

#[test]
fn the_public_handler_reads_only_the_slack_secret_and_its_own_sessions() {
    let p = rendered("slack-handler.json");
    let table = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/powerpole");
    assert!(allows(&p, "secretsmanager:GetSecretValue", SLACK));
    assert!(!allows(&p, "secretsmanager:GetSecretValue", ADMIN), "never a database's admin secret");
    assert!(allows(&p, "dynamodb:GetItem", &table), "Deny, Extend and Flag read the session to open their modals");
    // Only session items (src/store/dynamo/item.rs: `SESSION#<id>`), not the user-name
    // reservations nor the claims the worker keeps in the same table.
    let read = statement(&p, "ReadOneSessionToOpenItsModal");
    assert_eq!(read["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"], json!(["SESSION#*"]));
    assert!(allows(&p, "dynamodb:Query", &format!("{table}/index/{}", powerpole::store::schema::REQUESTER_INDEX)));
    assert!(!allows(&p, "dynamodb:Query", &format!("{table}/index/due")), "only the requester index");
    for action in ["ec2:RunInstances", "ec2:TerminateInstances", "dynamodb:PutItem", "dynamodb:UpdateItem", "s3:PutObject"] {
        assert!(!allows(&p, action, "*") && !allows(&p, action, &table), "the handler must not {action}");
    }
}

#[test]
fn the_export_role_creates_audit_objects_and_nothing_else() {
    let p = rendered("export.json");
    let bucket = format!("arn:aws:s3:::{NAME_PREFIX}-audit-{ACCOUNT}");
    assert!(allows(&p, "s3:PutObject", &format!("{bucket}/audit/pp-abcdefghij/00000000000000000001.json")));
    assert!(!allows(&p, "s3:PutObject", &format!("{bucket}/elsewhere")), "only under audit/");
    for action in ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"] {
        assert!(!allows(&p, action, &format!("{bucket}/audit/x")), "{action}");
    }
}
