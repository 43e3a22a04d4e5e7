//! AWS Signature Version 4 for a JSON POST (the awsJson protocol), for the DynamoDB Streams
//! calls the event source mapping stand-in makes with the export role's credentials (no SDK
//! client for DynamoDB Streams is built in this workspace).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Credentials, as `sts:AssumeRole` returns them.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Sends `body` to `url` (`http://host:port/`) as `target` (`DynamoDBStreams_20120810.GetRecords`),
/// signed for `service` in `region`; returns the status and the parsed answer.
pub async fn post_json(http: &reqwest::Client, url: &str, region: &str, service: &str, target: &str, body: &str, credentials: &Credentials) -> (u16, serde_json::Value) {
    let parsed = reqwest::Url::parse(url).expect("a URL");
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_string(),
    };
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let content_type = "application/x-amz-json-1.0";
    let payload_hash = hex::encode(Sha256::digest(body.as_bytes()));
    let mut headers: Vec<(&str, String)> = vec![("content-type", content_type.into()), ("host", host.clone()), ("x-amz-date", amz_date.clone()), ("x-amz-target", target.into())];
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token", token.clone()));
    }
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed_headers = headers.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(";");
    let canonical_request = format!("POST\n/\n\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())));
    let k_date = hmac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), &date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex::encode(hmac(&k_signing, &string_to_sign));
    let authorization = format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}", credentials.access_key_id);
    let mut request = http.post(url).header("Authorization", authorization).body(body.to_string());
    for (k, v) in &headers {
        if *k != "host" {
            request = request.header(*k, v);
        }
    }
    let answer = request.send().await.expect("moto answers");
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}
