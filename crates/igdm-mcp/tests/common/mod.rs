//! Shared harness: a seeded sandbox on 127.0.0.1:0, clients of its demo
//! accounts, and an `igdm mcp` HTTP server with a real rmcp client session.

#![allow(dead_code)]

use std::sync::Arc;

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value, json};

use igdm::{Client, PacingPolicy};
use igdm_mcp::{HttpOptions, IgdmServer, McpConfig, RunningHttp};
use igdm_sandbox::{DemoSeed, RunningSandbox};

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct Env {
    pub sandbox: RunningSandbox,
    pub seed: DemoSeed,
    pub base: String,
}

pub async fn env() -> Env {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    Env { sandbox, seed, base }
}

/// The personal demo account over the private web API.
pub fn web_client(env: &Env) -> Client {
    igdm_test::clients::web(&env.base, &env.seed, PacingPolicy::none())
}

/// The business demo account over the official Instagram API.
pub fn graph_client(env: &Env) -> Client {
    igdm_test::clients::graph(&env.base, &env.seed, PacingPolicy::none())
}

pub struct Mcp {
    pub http: RunningHttp,
    pub client: RunningService<RoleClient, ()>,
    pub server: IgdmServer,
}

pub async fn serve(client: Client, config: McpConfig) -> (IgdmServer, RunningHttp) {
    let server = IgdmServer::new(client, config).unwrap();
    let http = igdm_mcp::serve_http(
        server.clone(),
        HttpOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            token: TOKEN.into(),
            allow_remote: false,
        },
    )
    .await
    .unwrap();
    (server, http)
}

pub async fn connect(url: &str, token: &str) -> RunningService<RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token),
    );
    ().serve(transport).await.unwrap()
}

pub async fn mcp(client: Client, config: McpConfig) -> Mcp {
    let (server, http) = serve(client, config).await;
    let client = connect(&http.url(), TOKEN).await;
    Mcp { http, client, server }
}

/// Calls a tool; returns the result and its structured content.
pub async fn call(
    client: &RunningService<RoleClient, ()>,
    name: &str,
    args: Value,
) -> (CallToolResult, Value) {
    let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
    let r = client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    (r, v)
}

/// Calls a tool that must succeed; returns its `data`.
pub async fn ok(client: &RunningService<RoleClient, ()>, name: &str, args: Value) -> Value {
    let (r, v) = call(client, name, args).await;
    assert_ne!(r.is_error, Some(true), "{name} failed: {v}");
    assert_eq!(v["ok"], json!(true), "{name}: {v}");
    v
}

/// Calls a tool that must fail with `class`; returns the envelope.
pub async fn fails(
    client: &RunningService<RoleClient, ()>,
    name: &str,
    args: Value,
    class: &str,
) -> Value {
    let (r, v) = call(client, name, args).await;
    assert_eq!(r.is_error, Some(true), "{name} should fail: {v}");
    assert_eq!(v["ok"], json!(false), "{name}: {v}");
    assert_eq!(v["error"]["class"], json!(class), "{name}: {v}");
    for field in ["message", "retryable", "needs_user", "remediation"] {
        assert!(v["error"].get(field).is_some(), "{name}: error lacks {field}: {v}");
    }
    assert!(v["error"].get("retry_after").is_some(), "{name}: error lacks retry_after: {v}");
    v
}

/// The sandbox's request counters.
pub async fn stats(env: &Env) -> Value {
    igdm_test::sandbox::stats(&env.base).await
}

/// A host that asks its user through MCP elicitation; the user answers `approve`.
#[derive(Clone)]
pub struct Approver {
    pub approve: bool,
    pub protocol: rmcp::model::ProtocolVersion,
    pub asked: Arc<std::sync::Mutex<Vec<String>>>,
}

impl rmcp::ClientHandler for Approver {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::builder().enable_elicitation().build(),
            rmcp::model::Implementation::new("approver", "0"),
        )
        .with_protocol_version(self.protocol.clone())
    }

    async fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        if let rmcp::model::ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.asked.lock().unwrap().push(message);
        }
        let action = if self.approve {
            rmcp::model::ElicitationAction::Accept
        } else {
            rmcp::model::ElicitationAction::Decline
        };
        Ok(rmcp::model::ElicitResult::new(action).with_content(json!({"approve": self.approve})))
    }
}

pub async fn connect_approver(
    url: &str,
    approver: Approver,
) -> RunningService<RoleClient, Approver> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(TOKEN),
    );
    approver.serve(transport).await.unwrap()
}
