use std::time::Duration;

use axum::http::HeaderValue;

use super::*;

const NOW: f64 = 1_700_000_100.0;

fn instance(id: &str, launch_time: i64, tags: &[(&str, &str)]) -> Instance {
    Instance {
        id: id.to_owned(),
        launch_time,
        private_ip: Some("10.0.1.5".to_owned()),
        private_dns: Some("ip-10-0-1-5.eu-west-1.compute.internal".to_owned()),
        windows: false,
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn ids(page: &Value) -> Vec<&str> {
    page["InstanceInformationList"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|i| i["InstanceId"].as_str())
        .collect()
}

fn query(body: Value) -> Query {
    parse_query(body.to_string().as_bytes()).expect("a valid request")
}

fn refusal_code(body: Value) -> &'static str {
    parse_query(body.to_string().as_bytes())
        .expect_err("refused")
        .1
}

const A: &str = "i-0000000000000000a";
const B: &str = "i-0000000000000000b";
const C: &str = "i-0000000000000000c";

#[test]
fn describes_an_online_instance_with_the_fields_ssm_sends() {
    let page = select(
        &[instance(A, 1_700_000_000, &[])],
        &Controls::default(),
        NOW,
        &query(json!({})),
    )
    .unwrap();
    assert_eq!(
        page,
        json!({"InstanceInformationList": [{
            "InstanceId": A,
            "PingStatus": "Online",
            "LastPingDateTime": NOW,
            "AgentVersion": AGENT_VERSION,
            "IsLatestVersion": true,
            "PlatformType": "Linux",
            "PlatformName": "Amazon Linux",
            "PlatformVersion": "2023",
            "ResourceType": "EC2Instance",
            "SourceId": A,
            "SourceType": "AWS::EC2::Instance",
            "IPAddress": "10.0.1.5",
            "ComputerName": "ip-10-0-1-5.eu-west-1.compute.internal",
        }]})
    );
}

#[test]
fn held_instances_and_instances_launched_too_recently_are_not_listed() {
    let instances = [
        instance(A, 1_700_000_000, &[]),
        instance(B, 1_700_000_090, &[]),
    ];
    let mut controls = Controls::default();
    let all = query(json!({}));
    assert_eq!(
        ids(&select(&instances, &controls, NOW, &all).unwrap()),
        [A, B]
    );

    controls.online_after = Duration::from_secs(30);
    assert_eq!(ids(&select(&instances, &controls, NOW, &all).unwrap()), [A]);

    controls.held.insert(A.to_owned());
    assert!(ids(&select(&instances, &controls, NOW, &all).unwrap()).is_empty());

    controls = Controls {
        hold_all: true,
        ..Controls::default()
    };
    assert!(ids(&select(&instances, &controls, NOW, &all).unwrap()).is_empty());
}

#[test]
fn both_filter_styles_select_by_instance_id() {
    let instances = [
        instance(A, 1, &[]),
        instance(B, 2, &[]),
        instance(C, 3, &[]),
    ];
    let modern = query(json!({"Filters": [{"Key": "InstanceIds", "Values": [B, C]}]}));
    let legacy =
        query(json!({"InstanceInformationFilterList": [{"key": "InstanceIds", "valueSet": [A]}]}));
    assert_eq!(
        ids(&select(&instances, &Controls::default(), NOW, &modern).unwrap()),
        [B, C]
    );
    assert_eq!(
        ids(&select(&instances, &Controls::default(), NOW, &legacy).unwrap()),
        [A]
    );
}

#[test]
fn an_instance_that_is_not_online_yet_gives_an_empty_list_not_an_error() {
    let mut controls = Controls::default();
    controls.held.insert(A.to_owned());
    let by_id = query(json!({"Filters": [{"Key": "InstanceIds", "Values": [A]}]}));
    let page = select(&[instance(A, 1, &[])], &controls, NOW, &by_id).unwrap();
    assert_eq!(page, json!({"InstanceInformationList": []}));
}

#[test]
fn tag_filters_and_field_filters_select_what_they_name() {
    let instances = [
        instance(A, 1, &[("powerpole:session", "s-1")]),
        instance(B, 2, &[("powerpole:session", "s-2")]),
        instance(C, 3, &[]),
    ];
    let by_tag = query(json!({"Filters": [{"Key": "tag:powerpole:session", "Values": ["s-2"]}]}));
    let by_key = query(json!({"Filters": [{"Key": "tag-key", "Values": ["powerpole:session"]}]}));
    let by_platform = query(json!({"Filters": [{"Key": "PlatformTypes", "Values": ["Windows"]}]}));
    let online = query(json!({"Filters": [{"Key": "PingStatus", "Values": ["Online"]}]}));
    let controls = Controls::default();
    assert_eq!(
        ids(&select(&instances, &controls, NOW, &by_tag).unwrap()),
        [B]
    );
    assert_eq!(
        ids(&select(&instances, &controls, NOW, &by_key).unwrap()),
        [A, B]
    );
    assert!(ids(&select(&instances, &controls, NOW, &by_platform).unwrap()).is_empty());
    assert_eq!(
        ids(&select(&instances, &controls, NOW, &online).unwrap()).len(),
        3
    );
}

#[test]
fn pages_follow_max_results_and_next_token() {
    let instances: Vec<Instance> = (0..7)
        .map(|n| instance(&format!("i-{n:017x}"), n, &[]))
        .collect();
    let controls = Controls::default();
    let first = select(&instances, &controls, NOW, &query(json!({"MaxResults": 5}))).unwrap();
    assert_eq!(ids(&first).len(), 5);
    let token = first["NextToken"]
        .as_str()
        .expect("a next token")
        .to_owned();
    let second = select(
        &instances,
        &controls,
        NOW,
        &query(json!({"MaxResults": 5, "NextToken": token})),
    )
    .unwrap();
    assert_eq!(ids(&second).len(), 2);
    assert!(second.get("NextToken").is_none());
    let default = select(&instances, &controls, NOW, &query(json!({}))).unwrap();
    assert_eq!(ids(&default).len(), 7, "the default page holds 10");
}

#[test]
fn requests_ssm_would_refuse_are_refused_with_its_error_codes() {
    assert_eq!(
        refusal_code(json!({"MaxResults": 4})),
        "ValidationException"
    );
    assert_eq!(
        refusal_code(json!({"MaxResults": 51})),
        "ValidationException"
    );
    assert_eq!(
        refusal_code(json!({"NextToken": "garbage"})),
        "InvalidNextToken"
    );
    assert_eq!(
        refusal_code(json!({"Filters": [{"Key": "Colour", "Values": ["red"]}]})),
        "InvalidFilterKey"
    );
    assert_eq!(
        refusal_code(
            json!({"InstanceInformationFilterList": [{"key": "tag:x", "valueSet": ["y"]}]})
        ),
        "InvalidFilterKey"
    );
    assert_eq!(
        refusal_code(json!({"Filters": [{"Key": "InstanceIds", "Values": []}]})),
        "InvalidInstanceInformationFilterValue"
    );
    assert_eq!(
        refusal_code(json!({"Filters": [{"Key": "InstanceIds", "Values": ["web-1"]}]})),
        "InvalidInstanceId"
    );
    assert_eq!(
        refusal_code(json!({"Filters": [], "InstanceInformationFilterList": []})),
        "ValidationException"
    );
    assert_eq!(
        parse_query(b"{not json").unwrap_err().1,
        "SerializationException"
    );
    assert!(
        parse_query(b"").is_ok(),
        "an empty body is an empty request"
    );
}

#[test]
fn the_region_comes_from_the_sigv4_credential_scope() {
    let mut headers = HeaderMap::new();
    assert_eq!(region_of(&headers), None);
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-1/ssm/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature=abc",
        ),
    );
    assert_eq!(region_of(&headers), Some("eu-west-1"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer nonsense"),
    );
    assert_eq!(region_of(&headers), None);
}

#[test]
fn instance_ids_look_like_ec2_or_hybrid_node_ids() {
    assert!(is_instance_id("i-0123abcd"));
    assert!(is_instance_id("i-0123456789abcdef0"));
    assert!(is_instance_id("mi-0123456789abcdef0"));
    assert!(!is_instance_id("i-xyz"));
    assert!(!is_instance_id("0123456789abcdef0"));
}
