//! Every example and template the repository ships loads, the way an operator loads it:
//!
//! - each powerpole.toml example with `config check`'s semantics (the library's one loader,
//!   `ConfigLocation::load`): `powerpole.example.toml` as a file; the Terraform example's
//!   `powerpole.toml.example` as the module deploys it, in Parameter Store (moto) with the
//!   fragments `config_layers.tf` writes, read with `--config ssm:... --config-layers ssm:...`;
//! - each `terraform.tfvars.example` parses, and sets only variables its example declares.
//!
//! A new example file the test does not know fails it, so none ships unchecked.
//!
//! Needs the stand-ins' moto (`make test`, or `scripts/standins.sh start && source .local/standins.env`).

use std::path::{Path, PathBuf};

use powerpole::config_source::ConfigLocation;
use powerpole_deployment_test::model::{render_configuration, template_vars, Known};
use powerpole_deployment_test::{repo, tfvars};

/// Every file of the repository whose name says it is an example or a template.
fn shipped_examples() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | ".git" | ".local" | "node_modules") {
                    walk(&path, found);
                }
            } else if name.contains(".example") || name.contains("example.") || name.ends_with(".tmpl") || name.ends_with(".template") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo(), &mut found);
    found.sort();
    found
}

async fn moto() -> aws_config::SdkConfig {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL is not set: run `make test`, or `scripts/standins.sh start && source .local/standins.env`");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// The Terraform example's TOML as the module deploys it: its parameter and fragments written to
/// moto under a path of this test's own; the location to load it from.
async fn deployed(aws: &aws_config::SdkConfig, example: &Path) -> ConfigLocation {
    let region = aws.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let known = Known {
        vars: template_vars(&region, "powerpole", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/slack-AbCdEf", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/targets/billing/admin-GhIjKl", "subnet-0a1b2c3d4e5f60001", "sg-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60011", "sg-0a1b2c3d4e5f60011"),
        slack_secret_arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/slack-AbCdEf".into(),
        admin_secret_arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/targets/billing/admin-GhIjKl".into(),
        subnet_id: "subnet-0a1b2c3d4e5f60001".into(),
        security_group_id: "sg-0a1b2c3d4e5f60001".into(),
        queue_url: String::new(),
    };
    let text = std::fs::read_to_string(example).expect("the example");
    let (config, layers, _, _) = render_configuration(&known, &text);
    let base = format!("/examples-test/{}/config", powerpole::domain::SessionId::random().as_str());
    let ssm = aws_sdk_ssm::Client::new(aws);
    ssm.put_parameter().name(&base).r#type(aws_sdk_ssm::types::ParameterType::SecureString).value(config).send().await.expect("moto stores the parameter");
    for (name, text) in layers {
        ssm.put_parameter().name(format!("{base}.d/{name}")).r#type(aws_sdk_ssm::types::ParameterType::SecureString).value(text).send().await.expect("moto stores a fragment");
    }
    ConfigLocation::parse(&format!("ssm:{base}"), Some(&format!("ssm:{base}.d"))).expect("a location")
}

/// The variables `variable "NAME"` declares in the `.tf` files of `dir`.
fn declared_variables(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the example's folder").flatten() {
        if entry.path().extension().is_some_and(|e| e == "tf") {
            let text = std::fs::read_to_string(entry.path()).expect("a .tf file");
            for line in text.lines() {
                if let Some(rest) = line.trim().strip_prefix("variable \"") {
                    names.push(rest.split('"').next().unwrap_or_default().to_string());
                }
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_and_template_the_repository_ships_loads() {
    let aws = moto().await;
    let examples = shipped_examples();
    let root = repo();
    let names: Vec<String> = examples.iter().map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string()).collect();
    assert!(names.contains(&"powerpole.example.toml".to_string()) && names.contains(&"infra/examples/complete/powerpole.toml.example".to_string()), "{names:?}");
    for (path, name) in examples.iter().zip(&names) {
        if name == "powerpole.example.toml" {
            let location = ConfigLocation::file(path);
            if let Err(e) = location.load(&aws).await {
                panic!("{name} does not pass `config check`: {e}");
            }
        } else if name.starts_with("infra/examples/") && name.ends_with("powerpole.toml.example") {
            let location = deployed(&aws, path).await;
            match location.load(&aws).await {
                Ok(config) => assert!(!config.targets.is_empty(), "{name}: no target"),
                Err(e) => panic!("{name}, deployed by the module, does not pass `config check --config-layers`: {e}"),
            }
        } else if name.ends_with(".tfvars.example") {
            let vars = tfvars::parse(&std::fs::read_to_string(path).expect("the file")).unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
            let declared = declared_variables(path.parent().expect("a folder"));
            for var in vars.keys() {
                assert!(declared.contains(var), "{name} sets `{var}`, which its example does not declare ({declared:?})");
            }
        } else {
            panic!("{name} is an example this test does not know how to load: teach it (tests/examples.rs)");
        }
    }
}
