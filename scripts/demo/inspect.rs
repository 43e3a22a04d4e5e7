//! What the outside systems say, independently of powerpole: the instance as moto's EC2 reports it
//! and the account as MariaDB's `mysql.user` and `SHOW GRANTS` show it.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_ec2::types::{Filter, Instance};
use mysql_async::prelude::Queryable;

/// A bastion as moto reports it.
#[derive(Debug, Clone)]
pub struct Bastion {
    pub id: String,
    pub state: String,
    pub instance_type: String,
    pub private_ip: Option<String>,
    pub subnet_id: Option<String>,
    pub public_ip: Option<String>,
    pub http_tokens: Option<String>,
    pub key_name: Option<String>,
    pub instance_profile: Option<String>,
    pub security_groups: Vec<String>,
    pub tags: Vec<(String, String)>,
}

impl Bastion {
    fn from_ec2(i: &Instance) -> Bastion {
        let text = |s: Option<&str>| s.map(str::to_owned);
        let mut tags: Vec<(String, String)> =
            i.tags().iter().map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned())).collect();
        tags.sort();
        Bastion {
            id: i.instance_id().unwrap_or_default().to_owned(),
            state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default(),
            instance_type: i.instance_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
            private_ip: text(i.private_ip_address()),
            subnet_id: text(i.subnet_id()),
            public_ip: text(i.public_ip_address()),
            http_tokens: i.metadata_options().and_then(|m| m.http_tokens()).map(|t| t.as_str().to_owned()),
            key_name: text(i.key_name()),
            instance_profile: i.iam_instance_profile().and_then(|p| p.arn()).map(str::to_owned),
            security_groups: security_groups(i),
            tags,
        }
    }

    /// The instance, one fact a line.
    pub fn describe(&self) -> String {
        let none = || "none".to_owned();
        let mut lines = vec![
            format!("InstanceId        {}", self.id),
            format!("State             {}", self.state),
            format!("InstanceType      {}", self.instance_type),
            format!("SubnetId          {}", self.subnet_id.clone().unwrap_or_else(none)),
            format!("PrivateIpAddress  {}", self.private_ip.clone().unwrap_or_else(none)),
            format!("PublicIpAddress   {}", self.public_ip.clone().unwrap_or_else(none)),
            format!("KeyName           {}", self.key_name.clone().unwrap_or_else(none)),
            format!("HttpTokens        {} (IMDSv2 {})", self.http_tokens.clone().unwrap_or_else(none), if self.imdsv2_required() { "required" } else { "optional" }),
            format!("InstanceProfile   {}", self.instance_profile.clone().unwrap_or_else(none)),
            format!("SecurityGroups    {}", self.security_groups.join(", ")),
        ];
        lines.extend(self.tags.iter().map(|(k, v)| format!("Tag               {k} = {v}")));
        lines.join("\n")
    }

    pub fn imdsv2_required(&self) -> bool {
        self.http_tokens.as_deref() == Some("required")
    }
}

/// The instance's security groups: moto lists them on the network interface when the launch
/// gave one, on the instance otherwise.
fn security_groups(i: &Instance) -> Vec<String> {
    let on_interfaces = i.network_interfaces().iter().flat_map(|n| n.groups());
    let mut ids: Vec<String> = i.security_groups().iter().chain(on_interfaces).filter_map(|g| g.group_id()).map(str::to_owned).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Every instance moto has in `subnet_id` (the demo's own subnet), oldest first.
pub async fn bastions_in_subnet(ec2: &aws_sdk_ec2::Client, subnet_id: &str) -> Result<Vec<Bastion>> {
    let answer = ec2
        .describe_instances()
        .filters(Filter::builder().name("subnet-id").values(subnet_id).build())
        .send()
        .await
        .context("moto: DescribeInstances")?;
    Ok(answer.reservations().iter().flat_map(|r| r.instances()).map(Bastion::from_ec2).collect())
}

/// The instance `id` as moto reports it now.
pub async fn bastion(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Bastion> {
    let answer = ec2.describe_instances().instance_ids(id).send().await.context("moto: DescribeInstances")?;
    let found = answer.reservations().iter().flat_map(|r| r.instances()).next().map(Bastion::from_ec2);
    found.with_context(|| format!("moto does not know instance {id}"))
}

/// Whether every volume attached to instance `id` is encrypted (and there is at least one).
pub async fn root_volume_encrypted(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<bool> {
    let answer = ec2
        .describe_volumes()
        .filters(Filter::builder().name("attachment.instance-id").values(id).build())
        .send()
        .await
        .context("moto: DescribeVolumes")?;
    let volumes = answer.volumes();
    Ok(!volumes.is_empty() && volumes.iter().all(|v| v.encrypted() == Some(true)))
}

/// The hosts `mysql.user` has an account `user` for.
pub async fn account_hosts(pool: &mysql_async::Pool, user: &str) -> Result<Vec<String>> {
    let mut conn = pool.get_conn().await.context("connect to MariaDB as its admin")?;
    let hosts: Vec<String> = conn.exec("SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host", (user,)).await?;
    Ok(hosts)
}

/// `SHOW GRANTS FOR 'user'@'host'`, one statement a line.
pub async fn grants(pool: &mysql_async::Pool, user: &str, host: &str) -> Result<Vec<String>> {
    // SHOW GRANTS takes no placeholders: quote only what cannot need quoting.
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-%/".contains(&b));
    if !plain(user) || !plain(host) {
        bail!("refusing to build SHOW GRANTS for an unusual account name `{user}`@`{host}`");
    }
    let mut conn = pool.get_conn().await.context("connect to MariaDB as its admin")?;
    let rows: Vec<String> = conn.query(format!("SHOW GRANTS FOR '{user}'@'{host}'")).await?;
    Ok(rows)
}

/// MariaDB's audit log (server_audit, which records what Aurora's audit log does: user, client
/// address, statement).
pub struct DbAuditLog {
    path: String,
}

impl DbAuditLog {
    pub async fn locate(pool: &mysql_async::Pool) -> Result<Self> {
        let mut conn = pool.get_conn().await.context("connect to MariaDB as its admin")?;
        let path: Option<String> = conn.query_first("SELECT @@server_audit_file_path").await?;
        Ok(Self { path: path.context("MariaDB has no server_audit_file_path: is server_audit loaded?")? })
    }

    /// Where the log ends now.
    pub async fn end(&self) -> Result<u64> {
        Ok(tokio::fs::metadata(&self.path).await.with_context(|| format!("read MariaDB's audit log {}", self.path))?.len())
    }

    /// The lines about `user` written after `offset`, oldest first.
    pub async fn lines_since(&self, offset: u64, user: &str) -> Result<Vec<String>> {
        let bytes = tokio::fs::read(&self.path).await.with_context(|| format!("read MariaDB's audit log {}", self.path))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[start..]);
        // date time,server,user,host,connection,query id,operation,database,object,return code
        Ok(text.lines().filter(|line| line.split(',').nth(2) == Some(user)).map(str::to_owned).collect())
    }
}

/// A `SHOW GRANTS` line with the account's password hash left out (it is a secret too).
pub fn without_password_hash(grant: &str) -> String {
    match grant.find("IDENTIFIED BY PASSWORD '") {
        Some(start) => {
            let rest = &grant[start + "IDENTIFIED BY PASSWORD '".len()..];
            let end = rest.find('\'').map(|i| i + 1).unwrap_or(rest.len());
            format!("{}IDENTIFIED BY PASSWORD '<hash not shown>'{}", &grant[..start], &rest[end..])
        }
        None => grant.to_owned(),
    }
}

/// `SHOW GRANTS FOR role` (a role has no host part).
pub async fn role_grants(pool: &mysql_async::Pool, role: &str) -> Result<Vec<String>> {
    if !role.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
        bail!("refusing to build SHOW GRANTS for an unusual role name `{role}`");
    }
    let mut conn = pool.get_conn().await.context("connect to MariaDB as its admin")?;
    let rows: Vec<String> = conn.query(format!("SHOW GRANTS FOR `{role}`")).await?;
    Ok(rows)
}

/// Whether an account's grants are exactly `expected` (a `GRANT ... ON schema.* TO ` prefix) plus
/// what every account has: USAGE, and the marker role, which must itself grant nothing.
/// Never WITH GRANT OPTION.
pub fn grants_exactly(grants: &[String], expected: &str, marker: &str, marker_grants: &[String]) -> bool {
    let usage = |g: &String| g.starts_with("GRANT USAGE ON *.* TO ");
    let marker_grant = format!("GRANT `{marker}` TO ");
    let allowed = |g: &String| usage(g) || g.starts_with(expected) || g.starts_with(&marker_grant);
    grants.iter().any(|g| g.starts_with(expected))
        && grants.iter().all(allowed)
        && grants.iter().all(|g| !g.contains("WITH GRANT OPTION"))
        && marker_grants.iter().all(usage)
}

/// Calls `probe` every `interval` until it returns `Some`, or fails after `timeout` saying that
/// `what` did not happen.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, interval: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            bail!("{what} did not happen within {timeout:?}");
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = "GRANT SELECT, SHOW VIEW ON `billing`.* TO ";

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn exactly_read_allows_usage_and_an_empty_marker_role_only() {
        let grants = lines(&[
            "GRANT `powerpole-managed` TO `alice`@`10.200.8.4`",
            "GRANT USAGE ON *.* TO `alice`@`10.200.8.4` IDENTIFIED BY PASSWORD '*X' WITH MAX_USER_CONNECTIONS 5",
            "GRANT SELECT, SHOW VIEW ON `billing`.* TO `alice`@`10.200.8.4`",
        ]);
        let empty_role = lines(&["GRANT USAGE ON *.* TO `powerpole-managed`"]);
        assert!(grants_exactly(&grants, READ, "powerpole-managed", &empty_role));
        let busy_role = lines(&["GRANT SELECT ON *.* TO `powerpole-managed`"]);
        assert!(!grants_exactly(&grants, READ, "powerpole-managed", &busy_role));
        let mut more = grants.clone();
        more.push("GRANT INSERT ON `billing`.* TO `alice`@`10.200.8.4`".into());
        assert!(!grants_exactly(&more, READ, "powerpole-managed", &empty_role));
        let wider = lines(&["GRANT SELECT, SHOW VIEW, INSERT ON `billing`.* TO `alice`@`10.200.8.4`"]);
        assert!(!grants_exactly(&wider, READ, "powerpole-managed", &empty_role));
        let with_option = lines(&["GRANT SELECT, SHOW VIEW ON `billing`.* TO `alice`@`10.200.8.4` WITH GRANT OPTION"]);
        assert!(!grants_exactly(&with_option, READ, "powerpole-managed", &empty_role));
    }

    #[test]
    fn password_hashes_are_left_out() {
        let g = "GRANT USAGE ON *.* TO `a`@`h` IDENTIFIED BY PASSWORD '*2B60' WITH MAX_USER_CONNECTIONS 5";
        assert_eq!(without_password_hash(g), "GRANT USAGE ON *.* TO `a`@`h` IDENTIFIED BY PASSWORD '<hash not shown>' WITH MAX_USER_CONNECTIONS 5");
    }
}
