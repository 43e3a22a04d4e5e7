//! A moto server of the test's own (the shared one of `scripts/standins.sh` runs without IAM
//! enforcement, and other tests use it at the same time): the same program and version
//! (`scripts/moto_serial.py` in `.local/venv-moto`), on a free loopback port, killed when
//! dropped. It starts with `INITIAL_NO_AUTH_ACTION_COUNT` set, so the set-up (roles, the table,
//! the parameters...) is not checked; [`Moto::enforce`] then makes every later request be
//! authorised against its caller's policies.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::sigv4::Credentials;

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

pub struct Moto {
    child: tokio::process::Child,
    pub url: String,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The text between `<tag>` and `</tag>` in an XML answer.
pub fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + end].to_string())
}

impl Moto {
    pub async fn start() -> Moto {
        let repo = crate::repo();
        let python = repo.join(".local/venv-moto/bin/python");
        assert!(python.exists(), "{} is missing: run `scripts/standins.sh start` (it installs moto there), or `make test`", python.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port();
        let log = std::env::temp_dir().join(format!("powerpole-deployment-moto-{port}.log"));
        let file = std::fs::File::create(&log).expect("moto's log file");
        let child = tokio::process::Command::new(python)
            .arg(repo.join("scripts/moto_serial.py"))
            .arg("127.0.0.1")
            .arg(port.to_string())
            // Set-up is free; `enforce` switches the checks on.
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "1000000000")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a second handle"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("moto starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http.get(format!("{url}/moto-api/")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Moto { child, url, log };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto did not start on {url}; its log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// Everything moto logged (one line per request: what a failure message quotes).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One query-protocol call (IAM, STS) made before enforcement, as anybody.
    pub async fn query(&self, service: &str, params: &[(&str, &str)]) -> String {
        let body = params.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&");
        let answer = reqwest::Client::new()
            .post(&self.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Authorization", format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"))
            .body(body)
            .send()
            .await
            .expect("moto answers");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "{service} {params:?}: {status} {text}");
        text
    }

    /// A role that Lambda may assume, with one inline policy: what iam.tf makes per function.
    pub async fn role_with_policy(&self, role: &str, policy_name: &str, policy: &serde_json::Value) -> String {
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        let created = self.query("iam", &[("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", role), ("AssumeRolePolicyDocument", &trust.to_string())]).await;
        self.query("iam", &[("Action", "PutRolePolicy"), ("Version", "2010-05-08"), ("RoleName", role), ("PolicyName", policy_name), ("PolicyDocument", &policy.to_string())]).await;
        xml_field(&created, "Arn").expect("the role's ARN")
    }

    /// Credentials of `role_arn` (what Lambda gives a function of that role).
    pub async fn assume(&self, role_arn: &str, session: &str) -> Credentials {
        let answer = self.query("sts", &[("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", role_arn), ("RoleSessionName", session), ("DurationSeconds", "3600")]).await;
        Credentials {
            access_key_id: xml_field(&answer, "AccessKeyId").expect("an access key"),
            secret_access_key: xml_field(&answer, "SecretAccessKey").expect("a secret key"),
            session_token: xml_field(&answer, "SessionToken"),
        }
    }

    /// An IAM user allowed everything: the test's own eyes once enforcement is on.
    pub async fn admin(&self) -> Credentials {
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        self.query("iam", &[("Action", "CreateUser"), ("Version", "2010-05-08"), ("UserName", "deployment-test-admin")]).await;
        self.query("iam", &[("Action", "PutUserPolicy"), ("Version", "2010-05-08"), ("UserName", "deployment-test-admin"), ("PolicyName", "everything"), ("PolicyDocument", &policy.to_string())]).await;
        let key = self.query("iam", &[("Action", "CreateAccessKey"), ("Version", "2010-05-08"), ("UserName", "deployment-test-admin")]).await;
        Credentials {
            access_key_id: xml_field(&key, "AccessKeyId").expect("an access key"),
            secret_access_key: xml_field(&key, "SecretAccessKey").expect("a secret key"),
            session_token: None,
        }
    }

    /// From now on every request is authorised against its caller's identity policies.
    pub async fn enforce(&self) {
        let answer = reqwest::Client::new().post(format!("{}/moto-api/reset-auth", self.url)).body("0").send().await.expect("moto answers");
        assert!(answer.status().is_success(), "reset-auth: {}", answer.text().await.unwrap_or_default());
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
