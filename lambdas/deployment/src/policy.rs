//! What moto evaluates of an IAM policy, and a small evaluator for what it does not.
//!
//! moto 5.2 (`moto/iam/access_control.py`) authorises each request by its **action** only, for
//! every service but S3 and SQS: the resource it compares the policy's `Resource` with is `*`,
//! so a statement scoped to an ARN never matches (every call would be refused). For S3 it
//! compares the bucket/key ARN, for SQS the queue ARN. It does not evaluate **conditions**: a
//! statement with a `Condition` it cannot fill (all of ours: `kms:ViaService`,
//! `aws:RequestedRegion`, `aws:RequestTag/...`, `aws:ResourceTag/...`, `ec2:*`) counts as an
//! explicit deny, Allow or Deny alike. It does not check `iam:PassRole` on `RunInstances`, KMS
//! use behind Parameter Store, Secrets Manager, DynamoDB or S3, nor the SSM calls that the SSM
//! stand-in answers itself (`DescribeInstanceInformation`).
//!
//! moto also names a DynamoDB transaction by its API (`dynamodb:TransactWriteItems`), where IAM
//! authorises each item of it by the item's own action (`PutItem`, `UpdateItem`, `DeleteItem`,
//! `ConditionCheckItem`; there is no IAM action `TransactWriteItems`). The store's transactions
//! hold only puts (`src/store/dynamo/write.rs`), so moto's policy allows `TransactWriteItems`
//! exactly where the rendered one allows `PutItem`.
//!
//! So moto is given [`as_moto_evaluates`] of the exact rendered policy: every Allow statement
//! with its actions as written (so an action the code calls and the policy lacks is refused),
//! its resources kept for S3 and SQS and made `*` for the rest, its condition dropped; Deny
//! statements with a condition dropped (moto would make them deny everything). What that leaves
//! out (resources of the other services, conditions, the Denies) is checked against the rendered
//! policy itself with [`allows`] and by the tests over the rendered JSON.

use serde_json::{json, Value};

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// Services whose resource moto compares (the rest it compares as `*`).
fn moto_compares_resources(action: &str) -> bool {
    action.starts_with("s3:") || action.starts_with("sqs:")
}

/// The policy moto is given for the rendered `policy` (see the module's documentation).
pub fn as_moto_evaluates(policy: &Value) -> Value {
    let mut statements = Vec::new();
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        let conditional = statement.get("Condition").is_some();
        if statement["Effect"] == "Deny" {
            if !conditional {
                statements.push(statement.clone());
            }
            continue;
        }
        let mut actions = as_list(&statement["Action"]);
        if actions.iter().any(|a| a.eq_ignore_ascii_case("dynamodb:PutItem")) {
            actions.push("dynamodb:TransactWriteItems".into());
        }
        let (scoped, unscoped): (Vec<String>, Vec<String>) = actions.into_iter().partition(|a| moto_compares_resources(a));
        let sid = statement["Sid"].as_str().unwrap_or("Statement");
        if !scoped.is_empty() {
            statements.push(json!({"Sid": format!("{sid}Scoped"), "Effect": "Allow", "Action": scoped, "Resource": statement["Resource"].clone()}));
        }
        if !unscoped.is_empty() {
            statements.push(json!({"Sid": sid, "Effect": "Allow", "Action": unscoped, "Resource": "*"}));
        }
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// IAM's wildcard match (`*` any run, `?` one character), case-sensitive as for ARNs.
pub fn matches(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn action_matches(pattern: &str, action: &str) -> bool {
    // Action names are case-insensitive.
    matches(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// Whether `policy` allows `action` on `resource`, conditions taken as met (they are checked by
/// their own tests): some Allow statement covers both, and no Deny without a condition does.
pub fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    let statements: Vec<&Value> = policy["Statement"].as_array().into_iter().flatten().collect();
    let covers = |s: &Value| as_list(&s["Action"]).iter().any(|a| action_matches(a, action)) && as_list(&s["Resource"]).iter().any(|r| matches(r, resource));
    let denied = statements.iter().any(|s| s["Effect"] == "Deny" && s.get("Condition").is_none() && covers(s));
    !denied && statements.iter().any(|s| s["Effect"] == "Allow" && covers(s))
}

/// Every action some statement of `policy` allows (as written).
pub fn allowed_actions(policy: &Value) -> Vec<String> {
    let mut actions: Vec<String> = policy["Statement"].as_array().into_iter().flatten().filter(|s| s["Effect"] == "Allow").flat_map(|s| as_list(&s["Action"])).collect();
    actions.sort();
    actions.dedup();
    actions
}

/// The statement named `sid`.
pub fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"].as_array().into_iter().flatten().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no statement {sid} in {policy}"))
}

/// `policy` without `action` (in whichever statement allows it), for the test that removes one.
pub fn without_action(policy: &Value, action: &str) -> Value {
    let mut policy = policy.clone();
    for statement in policy["Statement"].as_array_mut().into_iter().flatten() {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let kept: Vec<String> = as_list(&statement["Action"]).into_iter().filter(|a| !a.eq_ignore_ascii_case(action)).collect();
        statement["Action"] = json!(kept);
    }
    policy["Statement"].as_array_mut().expect("statements").retain(|s| s["Effect"] != "Allow" || !as_list(&s["Action"]).is_empty());
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_gets_the_actions_with_resources_only_where_it_compares_them() {
        let policy = json!({"Statement": [
            {"Sid": "Q", "Effect": "Allow", "Action": ["sqs:SendMessage", "dynamodb:Query", "dynamodb:PutItem"], "Resource": "arn:aws:sqs:r:1:q"},
            {"Sid": "K", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "k", "Condition": {"StringEquals": {"kms:ViaService": "x"}}},
            {"Sid": "D", "Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*", "Condition": {"StringNotEquals": {"a": "b"}}},
            {"Sid": "E", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
        ]});
        let moto = as_moto_evaluates(&policy);
        let sids: Vec<&str> = moto["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap()).collect();
        assert_eq!(sids, ["QScoped", "Q", "K", "E"]);
        assert_eq!(moto["Statement"][0]["Resource"], "arn:aws:sqs:r:1:q");
        assert_eq!(moto["Statement"][1]["Resource"], "*");
        assert_eq!(moto["Statement"][1]["Action"], json!(["dynamodb:Query", "dynamodb:PutItem", "dynamodb:TransactWriteItems"]), "a transaction of puts is PutItem to IAM");
        assert!(moto["Statement"][2].get("Condition").is_none());
        assert!(allows(&policy, "sqs:sendmessage", "arn:aws:sqs:r:1:q") && !allows(&policy, "sqs:SendMessage", "arn:aws:sqs:r:1:other"));
        assert!(!allows(&policy, "s3:DeleteObject", "arn:aws:s3:::b/k"));
        assert!(matches("arn:*:table/t/index/*", "arn:aws:dynamodb:r:1:table/t/index/by_requester"));
        let removed = without_action(&policy, "dynamodb:Query");
        assert_eq!(allowed_actions(&removed), ["dynamodb:PutItem", "kms:Decrypt", "sqs:SendMessage"]);
    }
}
