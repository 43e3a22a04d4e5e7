//! What moto does not evaluate in the deployment test (conditions, resource tags, the resources
//! of most services: see `src/policy.rs`), checked on the policies exactly as the module renders
//! them, against the names the code itself uses (tag keys, the requester index).

use powerpole::bastion::tags;
use powerpole_deployment_test::model::{audit_kms_key_arn, deployment_id, kms_key_arn, template_vars, NAME_PREFIX};
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
    assert_eq!(deployment[format!("aws:RequestTag/{}", tags::DEPLOYMENT)], deployment_id().as_str());
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
        assert_eq!(own[format!("aws:ResourceTag/{}", tags::DEPLOYMENT)], deployment_id().as_str(), "{sid}");
    }
    let describe = &statement(&p, "DescribeActionsSupportOnlyResourceStarSoScopedToRegion")["Condition"];
    assert_eq!(describe["StringEquals"]["aws:RequestedRegion"], REGION);
}

#[test]
fn keys_are_used_only_through_the_services_that_hold_powerpoles_data() {
    let powerpole_key = kms_key_arn(REGION);
    let audit_key = audit_kms_key_arn(REGION);
    for (file, sid, key, services) in [
        ("slack-handler.json", "UseKeyOnlyThroughDynamoDbLambdaSqsAndParameterStore", &powerpole_key, vec!["dynamodb", "lambda", "sqs", "ssm"]),
        ("orchestrator.json", "UseKeyOnlyThroughDynamoDbLambdaSqsAndParameterStore", &powerpole_key, vec!["dynamodb", "lambda", "sqs", "ssm"]),
        ("export.json", "UseThePowerpoleKeyOnlyThroughDynamoDbAndSqs", &powerpole_key, vec!["dynamodb", "sqs"]),
        // The audit bucket's own key (export.tf), only through S3 (the bucket's SSE-KMS).
        ("export.json", "UseTheAuditKeyOnlyThroughS3", &audit_key, vec!["s3"]),
    ] {
        let p = rendered(file);
        let key_use = statement(&p, sid);
        assert_eq!(key_use["Resource"], json!(key), "{file} {sid}");
        let via = key_use["Condition"]["StringEquals"]["kms:ViaService"].clone();
        let expected: Vec<String> = services.iter().map(|s| format!("{s}.{REGION}.amazonaws.com")).collect();
        let via: Vec<String> = match via {
            Value::String(one) => vec![one],
            other => serde_json::from_value(other).unwrap_or_else(|e| panic!("{file} {sid}: kms:ViaService: {e}")),
        };
        assert_eq!(via, expected, "{file} {sid}");
        if file != "export.json" {
            let secrets = statement(&p, "DecryptSecretsOnlyThroughSecretsManager");
            assert_eq!(secrets["Condition"]["StringEquals"]["kms:ViaService"], format!("secretsmanager.{REGION}.amazonaws.com"), "{file}");
        }
    }
    // Every use of a key in these roles is one of the statements above: none without a condition.
    for file in ["slack-handler.json", "orchestrator.json", "export.json"] {
        let p = rendered(file);
        for s in p["Statement"].as_array().expect("statements") {
            let actions = s["Action"].to_string();
            if s["Effect"] == "Allow" && actions.contains("kms:") {
                assert!(s["Condition"]["StringEquals"]["kms:ViaService"].is_string() || s["Condition"]["StringEquals"]["kms:ViaService"].is_array(), "{file}: {s}");
            }
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
    // Only new objects: every statement that allows PutObject requires If-None-Match: * (moto
    // does not evaluate the condition; src/export/s3.rs sends it).
    let puts: Vec<&Value> = p["Statement"].as_array().expect("statements").iter().filter(|s| s["Effect"] == "Allow" && s["Action"].to_string().to_ascii_lowercase().contains("s3:putobject")).collect();
    assert_eq!(puts.len(), 1, "{p}");
    assert_eq!(puts[0]["Condition"], json!({"StringEquals": {"s3:if-none-match": "*"}}), "PutObject only with If-None-Match: *");
    // The hourly re-export reads the table by Scan, and nothing else of it.
    let table = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/powerpole");
    assert!(allows(&p, "dynamodb:Scan", &table));
    assert!(!allows(&p, "dynamodb:Scan", &format!("{table}/index/{}", powerpole::store::schema::REQUESTER_INDEX)), "the table, not an index");
    for action in ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"] {
        assert!(!allows(&p, action, &table), "the export role must not {action}");
    }
}

#[test]
fn the_audit_key_is_used_by_the_export_role_through_s3_and_re_policed_only_by_the_break_glass_principal() {
    let p = rendered("audit-key-policy.json");
    let guard = statement(&p, "OnlyTheBreakGlassPrincipalDisablesDeletesOrChangesThePolicy");
    assert_eq!(guard["Effect"], "Deny");
    assert_eq!(guard["Principal"]["AWS"], "*");
    assert_eq!(guard["Action"], json!(["kms:DisableKey", "kms:DisableKeyRotation", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"]));
    assert_eq!(guard["Condition"]["ArnNotEquals"]["aws:PrincipalArn"], format!("arn:aws:iam::{ACCOUNT}:role/break-glass"), "the example's audit_key_break_glass_principal_arn");
    let export = statement(&p, "ExportFunctionEncryptsThroughS3Only");
    assert_eq!(export["Principal"]["AWS"], format!("arn:aws:iam::{ACCOUNT}:role/{NAME_PREFIX}-export"));
    assert_eq!(export["Condition"]["StringEquals"]["kms:ViaService"], format!("s3.{REGION}.amazonaws.com"));
}
