//! Per-account EC2 clients. One `SdkConfig` is loaded from the standard aws-config chain
//! (environment, profiles, SSO, IMDS): the server's own (home) account. Each other
//! configured account gets an `SdkConfig` of its own whose credentials come from assuming
//! its role with the home credentials (see `accounts`). A client is made per account on
//! first use and reused; each call names its region (`in_region`), which chooses its
//! signing region, its retry partition and, unless an endpoint override is set (the
//! emulator, a proxy), its endpoint. Every client shares one HTTP connection pool. An
//! account's calls share the server's cache, metrics and write gate and its ceiling on calls in flight, and have their own per-region
//! limits, create claims and enabled regions. With discovery on (`org_member_role`), the
//! accounts reached also include the organization's, listed with `ListAccounts` (see
//! `organizations`) before the first query that needs them and refreshed in the background
//! when the listing is older than `org_refresh` ([`Ec2Clients::discover`]); a configured
//! account wins over a discovered one with the same id.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::retry::RetryPartition;
use aws_sdk_ec2::Client;

use super::accounts::{AccountSpec, RoleCredentials, SharedRole};
use super::cache::PageCache;
use super::error::AwsError;
use super::limits::{Limits, LimitsConfig};
use super::organizations::{self, OrgAccount, OrgDiscovery};
use super::writes::WriteGate;
use crate::metrics::AwsMetrics;

/// Where the server's AWS credentials come from.
#[derive(Clone, Default)]
pub enum Credentials {
    /// The standard aws-config chain: environment, profile, SSO, container or instance role.
    #[default]
    DefaultChain,
    /// Fixed keys (the demo's dummy credentials, tests).
    Static {
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::DefaultChain => f.write_str("DefaultChain"),
            // Never print the keys.
            Credentials::Static { .. } => f.write_str("Static { .. }"),
        }
    }
}

/// How to reach AWS.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// Send every request to this URL instead of `ec2.<region>.amazonaws.com`.
    /// `None` also honours `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_EC2` through aws-config.
    pub endpoint_url: Option<String>,
    /// Where credentials come from.
    pub credentials: Credentials,
    /// The region used when nothing else names one; `None` = the aws-config chain's region,
    /// else `us-east-1`.
    pub default_region: Option<String>,
    /// Attempts per read call, retries included (the SDK's standard retry mode: throttling
    /// and 5xx are retried with back-off, `x-amz-retry-after` honoured).
    pub max_attempts: u32,
    /// Concurrency and rate bounds.
    pub limits: LimitsConfig,
    /// How long `DescribeStoreImageTasks` pages are cached; zero turns the cache off.
    pub cache_ttl: Duration,
    /// Where AWS calls, cache lookups and created tasks are counted.
    pub metrics: Arc<AwsMetrics>,
    /// Time allowed to connect, per call.
    pub connect_timeout: Duration,
    /// Time allowed for one attempt of a call.
    pub attempt_timeout: Duration,
    /// The accounts reached besides the home one, through their roles.
    pub accounts: Vec<AccountSpec>,
    /// Discover the organization's accounts too (`org_member_role`); `None` = only
    /// `accounts`.
    pub discovery: Option<OrgDiscovery>,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            endpoint_url: None,
            credentials: Credentials::default(),
            default_region: None,
            max_attempts: 5,
            limits: LimitsConfig::default(),
            cache_ttl: Duration::from_secs(5),
            metrics: Arc::default(),
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
            accounts: Vec::new(),
            discovery: None,
        }
    }
}

/// The EC2 client of one account (one for every region: each call names its region, see
/// `in_region`) and what its calls share; the home account's also hold the other
/// configured accounts' ([`Ec2Clients::for_account`]).
#[derive(Clone)]
pub struct Ec2Clients {
    base: SdkConfig,
    default_region: String,
    /// Built on first use.
    client: Arc<OnceLock<Client>>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) cache: Arc<PageCache>,
    pub(crate) metrics: Arc<AwsMetrics>,
    /// Which statement made which store task (shared by every statement).
    pub(crate) claims: super::claims::Claims,
    /// Stops creates at the end of the shutdown grace; counts running INSERTs.
    pub(crate) writes: Arc<WriteGate>,
    /// The regions enabled for the account, once DescribeRegions has answered.
    enabled: Arc<tokio::sync::OnceCell<Vec<String>>>,
    /// The id of the account the credentials belong to, once GetCallerIdentity has answered
    /// (known from the start for an account reached through a role).
    account: Arc<tokio::sync::OnceCell<String>>,
    /// How this account is reached, when it is not the home account.
    member: Option<Arc<Member>>,
    /// The other accounts' clients, by id (none in theirs).
    members: Arc<Members>,
}

/// The accounts reached through a role: the configured ones and, with discovery, the
/// organization's.
#[derive(Default)]
struct Members {
    /// The clients of each, by id: replaced as a whole when a listing changes it.
    current: RwLock<Arc<BTreeMap<String, Ec2Clients>>>,
    /// The configured ones (they win over discovered ones with the same id).
    configured: Vec<AccountSpec>,
    /// Discovery, when on.
    organization: Option<Organization>,
}

/// The state of discovery.
struct Organization {
    discovery: OrgDiscovery,
    /// When the last listing succeeded; `None` until one has.
    listed_at: Mutex<Option<Instant>>,
    /// Held while a listing runs: the first queries wait for the first one. Holds the
    /// error of the last first listing that failed.
    listing: tokio::sync::Mutex<Option<AwsError>>,
    /// First listings finished so far (a caller that waited for a failed one gets its
    /// error instead of asking again).
    attempts: AtomicU64,
    /// A background refresh is running.
    refreshing: AtomicBool,
}

/// An account reached through a role.
struct Member {
    spec: AccountSpec,
    role: Arc<RoleCredentials>,
}

impl std::fmt::Debug for Ec2Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Clients")
            .field("account", &self.account.get())
            .field("role_arn", &self.role_arn())
            .field("default_region", &self.default_region)
            .field("endpoint_url", &self.base.endpoint_url())
            .finish()
    }
}

impl Ec2Clients {
    /// Loads the AWS configuration.
    pub async fn load(config: &AwsConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_attempt_timeout(config.attempt_timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts.max(1)));
        loader = loader.http_client(shared_http_client());
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Credentials::Static {
            access_key_id,
            secret_access_key,
        } = &config.credentials
        {
            loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "aws-flightsql-static",
            ));
        }
        if let Some(region) = &config.default_region {
            loader = loader.region(Region::new(region.clone()));
        }
        let base = loader.load().await;
        let default_region = match base.region() {
            Some(region) => region.to_string(),
            None => {
                tracing::warn!(
                    "no AWS region configured (AWS_REGION, the profile's region, or the \
                     instance metadata): statements that name no region ask us-east-1; set \
                     AWS_REGION or --regions to choose"
                );
                "us-east-1".to_owned()
            }
        };
        let home = Ec2Clients {
            base,
            default_region,
            client: Arc::default(),
            limits: Arc::new(Limits::new(config.limits)),
            cache: Arc::new(PageCache::new(config.cache_ttl)),
            metrics: Arc::clone(&config.metrics),
            claims: Default::default(),
            writes: Arc::default(),
            enabled: Arc::default(),
            account: Arc::default(),
            member: None,
            members: Arc::default(),
        };
        let mut members = BTreeMap::new();
        for spec in &config.accounts {
            members.insert(spec.id.clone(), home.member(spec).await);
        }
        Ec2Clients {
            members: Arc::new(Members {
                current: RwLock::new(Arc::new(members)),
                configured: config.accounts.clone(),
                organization: config.discovery.clone().map(|discovery| Organization {
                    discovery,
                    listed_at: Mutex::new(None),
                    listing: tokio::sync::Mutex::new(None),
                    attempts: AtomicU64::new(0),
                    refreshing: AtomicBool::new(false),
                }),
            }),
            ..home
        }
    }

    /// The current members, by id.
    fn current_members(&self) -> Arc<BTreeMap<String, Ec2Clients>> {
        Arc::clone(
            &self
                .members
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Whether the server discovers the organization's accounts (`org_member_role`).
    pub fn discovers(&self) -> bool {
        self.members.organization.is_some()
    }

    /// The discovery settings, when discovery is on.
    pub fn discovery(&self) -> Option<&OrgDiscovery> {
        self.members.organization.as_ref().map(|o| &o.discovery)
    }

    /// Makes sure the organization's accounts are known (nothing to do without
    /// discovery): the first call lists them and every caller waits for that listing; a
    /// listing older than `org_refresh` is refreshed in the background while callers go on
    /// with the last one. A failed first listing is the error (AWS's code and request id,
    /// and what permission is missing) of every caller that waited for it, and is asked
    /// again by the next call; a failed refresh keeps the last list and is logged.
    pub async fn discover(&self) -> Result<(), AwsError> {
        let Some(org) = &self.members.organization else {
            return Ok(());
        };
        let listed_at = *org.listed_at.lock().unwrap_or_else(|e| e.into_inner());
        match listed_at {
            None => {
                let before = org.attempts.load(Ordering::Acquire);
                let mut failed = org.listing.lock().await;
                if org
                    .listed_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some()
                {
                    // Another caller listed them while this one waited.
                    return Ok(());
                }
                if org.attempts.load(Ordering::Acquire) != before {
                    if let Some(error) = &*failed {
                        // The listing this caller waited for failed: concurrent queries
                        // share its error instead of asking again one after another.
                        return Err(error.clone());
                    }
                }
                let result = self.list_members().await;
                *failed = result.as_ref().err().cloned();
                org.attempts.fetch_add(1, Ordering::AcqRel);
                result
            }
            Some(at) if at.elapsed() >= org.discovery.refresh => {
                if !org.refreshing.swap(true, Ordering::AcqRel) {
                    let home = self.clone();
                    tokio::spawn(async move {
                        let Some(org) = &home.members.organization else {
                            return;
                        };
                        let result = {
                            let _listing = org.listing.lock().await;
                            home.list_members().await
                        };
                        if let Err(e) = result {
                            tracing::warn!(
                                error = %e,
                                "refreshing the organization's accounts failed; queries go on                                  with the last list"
                            );
                        }
                        org.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    /// Lists the organization's accounts and makes the members: the configured accounts,
    /// then every ACTIVE account of the organization but this (home) one and the skipped
    /// ones. Clients of accounts already known are kept (with their credentials).
    async fn list_members(&self) -> Result<(), AwsError> {
        let Some(org) = &self.members.organization else {
            return Ok(());
        };
        let home = self.account().await?;
        let listing: Vec<OrgAccount> = {
            use futures::TryStreamExt;
            let pages = self.list_accounts();
            futures::pin_mut!(pages);
            let mut all = Vec::new();
            while let Some(page) = pages.try_next().await? {
                all.extend(page);
            }
            all
        };
        let before = self.current_members();
        let mut next = BTreeMap::new();
        for spec in &self.members.configured {
            if let Some(clients) = before.get(&spec.id) {
                next.insert(spec.id.clone(), clients.clone());
            }
        }
        for account in organizations::members(&listing, &home, &org.discovery) {
            if next.contains_key(&account.id) {
                continue;
            }
            let spec = AccountSpec {
                id: account.id.clone(),
                role_arn: org.discovery.role_arn(&account.id),
                external_id: org.discovery.external_id.clone(),
                regions: None,
            };
            let clients = match before.get(&account.id) {
                Some(known) if known.role_arn() == Some(spec.role_arn.as_str()) => known.clone(),
                _ => self.member(&spec).await,
            };
            next.insert(account.id.clone(), clients);
        }
        let added = next.keys().filter(|id| !before.contains_key(*id)).count();
        let removed = before.keys().filter(|id| !next.contains_key(*id)).count();
        tracing::info!(
            accounts = next.len(),
            added,
            removed,
            "organization's accounts listed (ListAccounts)"
        );
        *self
            .members
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        *org.listed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// The pages of the organization's `ListAccounts`, asked with these (home) credentials
    /// in the default region, one item per page.
    pub fn list_accounts(
        &self,
    ) -> impl futures::Stream<Item = Result<Vec<OrgAccount>, AwsError>> + Send + 'static {
        organizations::list_accounts(&self.base, &self.default_region, Arc::clone(&self.metrics))
    }

    /// The clients of `spec`'s account: its role assumed with these (home) credentials.
    async fn member(&self, spec: &AccountSpec) -> Ec2Clients {
        let role =
            Arc::new(RoleCredentials::new(spec, &self.base, Arc::clone(&self.metrics)).await);
        let base = self
            .base
            .to_builder()
            .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(
                SharedRole(Arc::clone(&role)),
            ))
            .build();
        Ec2Clients {
            base,
            default_region: self.default_region.clone(),
            client: Arc::default(),
            limits: Arc::new(self.limits.sibling()),
            cache: Arc::clone(&self.cache),
            metrics: Arc::clone(&self.metrics),
            // One set of claims for every account (keyed on the account): clients built
            // again for an account keep its claims.
            claims: self.claims.clone(),
            writes: Arc::clone(&self.writes),
            enabled: Arc::default(),
            account: Arc::new(tokio::sync::OnceCell::new_with(Some(spec.id.clone()))),
            member: Some(Arc::new(Member {
                spec: spec.clone(),
                role,
            })),
            members: Arc::default(),
        }
    }

    /// The ids of the accounts reached through a role, sorted (the home account is not
    /// among them): the configured ones and the last discovered ones.
    pub fn member_accounts(&self) -> Vec<String> {
        self.current_members().keys().cloned().collect()
    }

    /// The clients of account `id`: the home account's (these) or a configured one's;
    /// `None` for an account the server does not reach. Needs the home account's id
    /// ([`Self::account`]) for the home account.
    pub fn for_account(&self, id: &str) -> Option<Ec2Clients> {
        if self.account.get().map(String::as_str) == Some(id) {
            return Some(self.clone());
        }
        self.current_members().get(id).cloned()
    }

    /// The role assumed to reach this account; `None` for the home account.
    pub fn role_arn(&self) -> Option<&str> {
        self.member.as_ref().map(|m| m.spec.role_arn.as_str())
    }

    /// The regions this account is asked in when a query names none, when configured for
    /// it; `None` = the server's.
    pub fn account_regions(&self) -> Option<&[String]> {
        self.member.as_ref().and_then(|m| m.spec.regions.as_deref())
    }

    /// Makes sure the account can be reached: assumes its role unless credentials from an
    /// earlier call are still fresh (the home account needs nothing). The error names the
    /// account, the role, AWS's code and request id.
    pub async fn ready(&self) -> Result<(), AwsError> {
        match &self.member {
            Some(member) => member.role.get().await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// Where this account's pages of `region` are kept in the shared response cache.
    pub(crate) fn cache_place(&self, region: &str) -> String {
        match &self.member {
            Some(member) => format!("{}/{region}", member.spec.id),
            None => format!("home/{region}"),
        }
    }

    /// Where these clients count AWS calls, cache lookups, created tasks and skipped
    /// accounts.
    pub fn metrics(&self) -> &Arc<AwsMetrics> {
        &self.metrics
    }

    /// The gate of every create these clients send (the server stops it at shutdown).
    pub fn writes(&self) -> Arc<WriteGate> {
        Arc::clone(&self.writes)
    }

    /// The region used when a statement names none.
    pub fn default_region(&self) -> &str {
        &self.default_region
    }

    /// The account's client. Every call made with it must name its region with
    /// `in_region` (`.customize().config_override(in_region(r))`): without it the call goes
    /// to the default region. Crate-private: only the ec2 layer (pages, create,
    /// DescribeRegions) holds it.
    pub(crate) fn client(&self) -> Client {
        self.client
            .get_or_init(|| {
                let conf = aws_sdk_ec2::config::Builder::from(&self.base)
                    .retry_classifier(super::error::RetryExpiredCredentials)
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }

    /// Every region enabled for the account (`DescribeRegions`, opt-in status
    /// `opt-in-not-required` or `opted-in`), sorted. Asked once (INSERT's checks, `--regions
    /// all` and the explanation of a refused region share the answer); a failed lookup is
    /// asked again next time.
    pub async fn enabled_regions(&self) -> Result<Vec<String>, AwsError> {
        self.enabled
            .get_or_try_init(|| self.describe_regions())
            .await
            .cloned()
    }

    /// The enabled regions when they are already known, without asking AWS.
    pub fn known_enabled_regions(&self) -> Option<Vec<String>> {
        self.enabled.get().cloned()
    }

    /// The 12-digit id of the account the credentials belong to (STS `GetCallerIdentity`,
    /// sent to the default region). Asked once; a failed lookup is asked again next time.
    pub async fn account(&self) -> Result<String, AwsError> {
        self.account
            .get_or_try_init(|| self.get_caller_identity())
            .await
            .cloned()
    }

    /// The account id when it is already known, without asking AWS.
    pub fn known_account(&self) -> Option<String> {
        self.account.get().cloned()
    }

    async fn get_caller_identity(&self) -> Result<String, AwsError> {
        const ACTION: &str = "GetCallerIdentity";
        let region = self.default_region.clone();
        let _slot = self.limits.acquire(&region).await;
        let conf = aws_sdk_sts::config::Builder::from(&self.base)
            .region(Region::new(region.clone()))
            .build();
        let result = aws_sdk_sts::Client::from_conf(conf)
            .get_caller_identity()
            .send()
            .await;
        self.metrics
            .aws_call(&region, ACTION, if result.is_ok() { "ok" } else { "error" });
        let out = result.map_err(|e| AwsError::from_sdk(&region, ACTION, e))?;
        match out.account() {
            Some(id) if is_account_id(id) => Ok(id.to_owned()),
            other => Err(AwsError::unexpected(
                &region,
                ACTION,
                format!(
                    "STS answered without a 12-digit account id ({})",
                    other.unwrap_or("none")
                ),
            )),
        }
    }

    async fn describe_regions(&self) -> Result<Vec<String>, AwsError> {
        let region = self.default_region.clone();
        let _slot = self.limits.acquire(&region).await;
        let out = self
            .client()
            .describe_regions()
            .customize()
            .config_override(in_region(&region))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&region, "DescribeRegions", e))?;
        let mut regions: Vec<String> = out
            .regions()
            .iter()
            .filter(|r| {
                matches!(
                    r.opt_in_status(),
                    Some("opt-in-not-required") | Some("opted-in") | None
                )
            })
            .filter_map(|r| r.region_name().map(str::to_owned))
            .collect();
        regions.sort();
        Ok(regions)
    }
}

/// The HTTP client of every SDK client the server makes: the SDK's default (hyper, rustls
/// with aws-lc, proxy settings from the environment), built once so that every account's
/// and region's client shares one connection pool. Left to the SDK, each client builds a
/// default of its own: 100 accounts x 16 regions kept 1,600 pools and about as many open
/// connections to one endpoint, and their buffers.
fn shared_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// The per-call configuration that sends one call of an account's client to `region`. One
/// client per account and region held about 19 KB each: 30 MB over 100 accounts x 16
/// regions. The region chooses the call's endpoint and signing region; the retry partition
/// (the SDK's quota of retries, `ec2-<region>` as a client of that region has it) keeps
/// throttling in one region from using up the retries of the others.
pub(crate) fn in_region(region: &str) -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default()
        .region(Region::new(region.to_owned()))
        .retry_partition(RetryPartition::new(format!("ec2-{region}")))
}

/// An AWS account id: 12 ASCII digits.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
    use aws_sdk_ec2::error::BoxError;

    /// Records the URI, `Authorization` header and retry partition of a call about to be
    /// sent, then stops it: nothing leaves the process.
    #[derive(Debug, Default, Clone)]
    struct Sent(Arc<Mutex<Option<SentCall>>>);

    /// The URI, the `Authorization` header and the retry partition of a call.
    type SentCall = (String, String, Option<RetryPartition>);

    impl Intercept for Sent {
        fn name(&self) -> &'static str {
            "Sent"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let request = context.request();
            let authorization = request.headers().get("authorization").unwrap_or_default();
            let partition = cfg.load::<RetryPartition>().cloned();
            *self.0.lock().unwrap() = Some((
                request.uri().to_owned(),
                authorization.to_owned(),
                partition,
            ));
            Err("stopped before it was sent".into())
        }
    }

    /// One client per account serves every region: the region named per call chooses the
    /// endpoint AWS is asked at, the region the request is signed for and the retry
    /// partition (the emulator tests cannot show the endpoint: they override it). Expects
    /// no endpoint settings in the environment or profile (`AWS_ENDPOINT_URL`,
    /// `AWS_USE_FIPS_ENDPOINT`, ...), which would change the endpoint.
    #[tokio::test]
    async fn each_call_goes_to_and_is_signed_for_its_own_region() {
        let clients = Ec2Clients::load(&AwsConfig {
            credentials: Credentials::Static {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
            },
            default_region: Some("us-east-1".into()),
            max_attempts: 1,
            ..AwsConfig::default()
        })
        .await;
        for region in ["eu-west-3", "ap-southeast-2", "us-east-1", "cn-north-1"] {
            let sent = Sent::default();
            let result = clients
                .client()
                .describe_store_image_tasks()
                .customize()
                .config_override(in_region(region))
                .interceptor(sent.clone())
                .send()
                .await;
            assert!(result.is_err(), "{region}: stopped before it was sent");
            let (uri, authorization, partition) = sent.0.lock().unwrap().take().expect("sent");
            let domain = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            assert_eq!(uri, format!("https://ec2.{region}.{domain}/"));
            assert!(
                authorization.contains(&format!("/{region}/ec2/aws4_request")),
                "{region}: {authorization}"
            );
            assert_eq!(
                partition,
                Some(RetryPartition::new(format!("ec2-{region}"))),
                "{region}"
            );
        }
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(is_account_id("111111111111"));
        assert!(is_account_id("012345678901"));
        assert!(!is_account_id("11111111111"));
        assert!(!is_account_id("1111111111111"));
        assert!(!is_account_id("11111111111a"));
        assert!(!is_account_id("１１１１１１１１１１１１"));
    }
}
