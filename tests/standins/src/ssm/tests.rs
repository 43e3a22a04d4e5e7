use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::any;
use serde_json::{json, Value};

use super::*;
use crate::moto_url_from_env;

/// What a fake upstream saw of one request.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// An upstream that records the request and answers 418 with a header and a body, to show the
/// stand-in passes both ways unchanged.
async fn fake_moto() -> (Server, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    let router = Router::new().fallback(any(move |request: Request| {
        let record = record.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
            *record.lock().unwrap() = Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: parts.headers,
                body: body.to_vec(),
            };
            (
                StatusCode::IM_A_TEAPOT,
                [("x-amzn-requestid", "moto-42")],
                "moto says hi",
            )
        }
    }));
    let server = Server::start(any_loopback_port(), |_| router)
        .await
        .expect("fake moto starts");
    (server, seen)
}

#[tokio::test]
async fn everything_else_is_passed_to_moto_and_back_unchanged() {
    let (moto, seen) = fake_moto().await;
    let standin = SsmStandin::start(&format!("http://{}", moto.addr))
        .await
        .unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{}/some/path?a=1&b=two", standin.url()))
        .header("X-Amz-Target", "AmazonSSM.GetParameter")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/ssm/aws4_request",
        )
        .body(r#"{"Name":"/powerpole/x"}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status(), 418);
    assert_eq!(answer.headers()["x-amzn-requestid"], "moto-42");
    assert_eq!(answer.text().await.unwrap(), "moto says hi");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/some/path?a=1&b=two");
    assert_eq!(seen.body, br#"{"Name":"/powerpole/x"}"#);
    assert_eq!(seen.headers["x-amz-target"], "AmazonSSM.GetParameter");
    assert!(seen.headers["authorization"]
        .to_str()
        .unwrap()
        .contains("eu-west-1/ssm"));
    // Host is part of the SigV4 signature: moto must see the host the client signed.
    let standin_host = standin.url().trim_start_matches("http://").to_owned();
    assert_eq!(seen.headers["host"], standin_host.as_str());
}

#[tokio::test]
async fn a_moto_url_that_is_not_http_is_refused_at_start() {
    assert!(matches!(
        SsmStandin::start("moto:5000").await,
        Err(StartError::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn an_unreachable_moto_is_an_internal_server_error_in_aws_json() {
    // Port 9 (discard) is closed on loopback here; the EC2 client's retries stay short.
    let standin = SsmStandin::start("http://127.0.0.1:9").await.unwrap();
    let answer = reqwest::Client::new()
        .post(standin.url())
        .header("X-Amz-Target", DESCRIBE_INSTANCE_INFORMATION)
        .header("Content-Type", "application/x-amz-json-1.1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 500);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["__type"], json!("InternalServerError"));
}

mod against_moto {
    //! These need a moto server: `POWERPOLE_TEST_MOTO_URL=http://127.0.0.1:PORT cargo test -p
    //! powerpole-standins -- --include-ignored`. Each test uses its own region and filters on the
    //! instances it launched, so they can share one moto.

    use aws_sdk_ssm::types::{InstanceInformationStringFilter, PingStatus, PlatformType};

    use super::*;

    fn ec2(region: &str) -> aws_sdk_ec2::Client {
        use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(moto_url_from_env())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    /// The product's SSM client, pointed at the stand-in.
    fn ssm(standin: &SsmStandin, region: &str) -> aws_sdk_ssm::Client {
        use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(standin.url())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    /// Launches one instance in moto; returns its id and private IP.
    async fn launch(region: &str) -> (String, String) {
        let launched = ec2(region)
            .run_instances()
            .image_id("ami-0123456789abcdef0")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("moto launches an instance");
        let instance = &launched.instances()[0];
        (
            instance.instance_id().expect("an id").to_owned(),
            instance
                .private_ip_address()
                .expect("a private IP")
                .to_owned(),
        )
    }

    async fn describe(
        ssm: &aws_sdk_ssm::Client,
        id: &str,
    ) -> Vec<aws_sdk_ssm::types::InstanceInformation> {
        ssm.describe_instance_information()
            .filters(
                InstanceInformationStringFilter::builder()
                    .key("InstanceIds")
                    .values(id)
                    .build()
                    .expect("a filter"),
            )
            .send()
            .await
            .expect("DescribeInstanceInformation answers")
            .instance_information_list()
            .to_vec()
    }

    #[tokio::test]
    async fn aws_sdk_ssm_reads_a_running_moto_instance_as_an_online_node() {
        let region = "eu-west-3";
        let standin = SsmStandin::start(&moto_url_from_env()).await.unwrap();
        let (id, ip) = launch(region).await;

        let nodes = describe(&ssm(&standin, region), &id).await;

        assert_eq!(nodes.len(), 1);
        let node = &nodes[0];
        assert_eq!(node.instance_id(), Some(id.as_str()));
        assert_eq!(node.ping_status(), Some(&PingStatus::Online));
        assert_eq!(node.platform_type(), Some(&PlatformType::Linux));
        assert_eq!(node.ip_address(), Some(ip.as_str()));
        assert_eq!(
            node.resource_type().map(|r| r.as_str()),
            Some("EC2Instance")
        );
        assert!(node.is_latest_version().unwrap_or(false));
        let last_ping = node.last_ping_date_time().expect("a last ping").secs();
        assert!((last_ping - chrono::Utc::now().timestamp()).abs() < 60);
        assert!(node.computer_name().is_some_and(|n| n.starts_with("ip-")));
    }

    #[tokio::test]
    async fn held_and_not_yet_due_agents_stay_out_of_the_list_until_released() {
        let region = "ap-south-1";
        let standin = SsmStandin::start(&moto_url_from_env()).await.unwrap();
        let ssm = ssm(&standin, region);
        let (id, _) = launch(region).await;

        standin.hold_offline(&id);
        assert!(describe(&ssm, &id).await.is_empty());
        standin.release(&id);
        assert_eq!(describe(&ssm, &id).await.len(), 1);

        standin.hold_all_offline(true);
        assert!(describe(&ssm, &id).await.is_empty());
        standin.hold_all_offline(false);

        standin.online_after(Duration::from_secs(3600));
        assert!(describe(&ssm, &id).await.is_empty());
        standin.online_after(Duration::ZERO);
        assert_eq!(describe(&ssm, &id).await.len(), 1);
    }

    #[tokio::test]
    async fn instances_are_seen_only_in_the_region_the_request_is_signed_for() {
        let standin = SsmStandin::start(&moto_url_from_env()).await.unwrap();
        let (id, _) = launch("sa-east-1").await;
        assert_eq!(describe(&ssm(&standin, "sa-east-1"), &id).await.len(), 1);
        assert!(describe(&ssm(&standin, "ca-central-1"), &id)
            .await
            .is_empty());
    }

    #[tokio::test]
    async fn parameter_store_calls_reach_moto_through_the_standin() {
        let region = "eu-north-1";
        let standin = SsmStandin::start(&moto_url_from_env()).await.unwrap();
        let ssm = ssm(&standin, region);
        let name = format!(
            "/powerpole/standins/{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );

        ssm.put_parameter()
            .name(&name)
            .value("s3cret")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .expect("PutParameter passes through");
        let got = ssm
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await
            .expect("GetParameter passes through");
        let missing = ssm.get_parameter().name("/powerpole/none").send().await;

        assert_eq!(got.parameter().and_then(|p| p.value()), Some("s3cret"));
        assert!(missing
            .expect_err("no such parameter")
            .into_service_error()
            .is_parameter_not_found());
    }

    #[tokio::test]
    async fn the_sdk_paginator_walks_every_page() {
        let region = "us-west-1";
        let standin = SsmStandin::start(&moto_url_from_env()).await.unwrap();
        let mut launched = Vec::new();
        for _ in 0..6 {
            launched.push(launch(region).await.0);
        }
        let pages: Vec<_> = ssm(&standin, region)
            .describe_instance_information()
            .filters(
                InstanceInformationStringFilter::builder()
                    .key("InstanceIds")
                    .set_values(Some(launched.clone()))
                    .build()
                    .expect("a filter"),
            )
            .max_results(5)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("every page answers");
        let seen: Vec<&str> = pages
            .iter()
            .flat_map(|p| p.instance_information_list())
            .filter_map(|i| i.instance_id())
            .collect();
        assert_eq!(pages.len(), 2);
        assert_eq!(seen.len(), 6);
        assert!(launched.iter().all(|id| seen.contains(&id.as_str())));
    }
}
