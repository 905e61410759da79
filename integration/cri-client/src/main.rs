//! Drive containerd's CRI plugin the way the kubelet does, with a RuntimeClass
//! handler, and report each step in integration/lib.sh's format.
//!
//!     ferry-cri-client SOCKET HANDLER IMAGE LOGDIR
//!
//! RunPodSandbox (host network: no CNI here) with `runtime_handler: HANDLER`,
//! CreateContainer, StartContainer, ContainerStatus, ExecSync, StopContainer,
//! RemoveContainer, StopPodSandbox, RemovePodSandbox. Exit status 1 when a
//! step failed; the pod is removed on the way out whatever happened.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

type Client = RuntimeServiceClient<Channel>;

struct Report {
    pass: u32,
    fail: u32,
}

impl Report {
    fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Display) {
        if ok {
            self.pass += 1;
            println!("ok   cri: {what}");
        } else {
            self.fail += 1;
            println!("FAIL cri: {what}");
            println!("       {detail}");
        }
    }
}

const STEP: Duration = Duration::from_secs(60);

macro_rules! call {
    ($client:expr, $method:ident, $req:expr) => {
        match tokio::time::timeout(STEP, $client.$method($req)).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(format!("{}: {}", stringify!($method), status.message())),
            Err(_) => Err(format!("{}: no answer in {:?}", stringify!($method), STEP)),
        }
    };
}

async fn connect(path: String) -> Result<Client, String> {
    let channel = Endpoint::try_from("http://[::]:50051")
        .map_err(|e| e.to_string())?
        .connect_with_connector(service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|e| e.to_string())?;
    Ok(RuntimeServiceClient::new(channel))
}

fn sandbox_config(logdir: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "ferry-pod".into(),
            uid: "ferry-pod-uid".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        // host network (no CNI here) means the host UTS namespace: no hostname
        hostname: String::new(),
        log_directory: logdir.into(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn container_state(c: &mut Client, id: &str) -> Result<(i32, i32), String> {
    let r = call!(
        c,
        container_status,
        ContainerStatusRequest { container_id: id.into(), verbose: false }
    )?;
    let s = r.status.ok_or("no status")?;
    Ok((s.state, s.exit_code))
}

async fn scenario(c: &mut Client, r: &mut Report, handler: &str, image: &str, logdir: &str) -> Result<(), String> {
    let v = call!(c, version, VersionRequest { version: "v1".into() })?;
    r.check(
        &format!("Version: {} {} (CRI {})", v.runtime_name, v.runtime_version, v.runtime_api_version),
        v.runtime_api_version.starts_with("v1"),
        format!("{v:?}"),
    );

    let sb = sandbox_config(logdir);
    let pod = call!(
        c,
        run_pod_sandbox,
        RunPodSandboxRequest { config: Some(sb.clone()), runtime_handler: handler.into() }
    )?
    .pod_sandbox_id;
    r.check(&format!("RunPodSandbox with runtime_handler {handler:?}"), !pod.is_empty(), "empty id");
    println!("POD {pod}");

    let st = call!(
        c,
        pod_sandbox_status,
        PodSandboxStatusRequest { pod_sandbox_id: pod.clone(), verbose: true }
    )?;
    let ready = st.status.as_ref().map(|s| s.state) == Some(PodSandboxState::SandboxReady as i32);
    r.check("PodSandboxStatus: SANDBOX_READY", ready, format!("{:?}", st.status));
    let info = st.info.get("info").cloned().unwrap_or_default();
    r.check(
        &format!("PodSandboxStatus: the sandbox runs under handler {handler:?}"),
        info.contains(&format!("\"runtimeHandler\":\"{handler}\"")),
        format!("info: {}", &info[..info.len().min(400)]),
    );

    let cfg = ContainerConfig {
        metadata: Some(ContainerMetadata { name: "c1".into(), attempt: 0 }),
        image: Some(ImageSpec { image: image.into(), ..Default::default() }),
        command: vec!["sh".into(), "-c".into(), "echo started; exec sleep 1000".into()],
        log_path: "c1.log".into(),
        linux: Some(LinuxContainerConfig::default()),
        ..Default::default()
    };
    let id = call!(
        c,
        create_container,
        CreateContainerRequest { pod_sandbox_id: pod.clone(), config: Some(cfg), sandbox_config: Some(sb) }
    )?
    .container_id;
    r.check("CreateContainer", !id.is_empty(), "empty id");
    let (state, _) = container_state(c, &id).await?;
    r.check("ContainerStatus: CONTAINER_CREATED", state == ContainerState::ContainerCreated as i32, state);

    call!(c, start_container, StartContainerRequest { container_id: id.clone() })?;
    let (state, _) = container_state(c, &id).await?;
    r.check("StartContainer: CONTAINER_RUNNING", state == ContainerState::ContainerRunning as i32, state);

    let e = call!(
        c,
        exec_sync,
        ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["sh".into(), "-c".into(), "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '; exit 3".into()],
            timeout: 30,
        }
    )?;
    let out = String::from_utf8_lossy(&e.stdout).to_string();
    r.check(
        "ExecSync: output and exit code 3",
        e.exit_code == 3 && out.starts_with("exec-ok\nsleep 1000"),
        format!("exit {} stdout {:?} stderr {:?}", e.exit_code, out, String::from_utf8_lossy(&e.stderr)),
    );

    // sleep is pid 1 of its pid namespace: it ignores SIGTERM, so the stop
    // must end with SIGKILL after the 2 s grace.
    let t0 = std::time::Instant::now();
    call!(c, stop_container, StopContainerRequest { container_id: id.clone(), timeout: 2 })?;
    let dt = t0.elapsed();
    let (state, code) = container_state(c, &id).await?;
    r.check(
        &format!("StopContainer (timeout 2): CONTAINER_EXITED, exit 137, after {} ms", dt.as_millis()),
        state == ContainerState::ContainerExited as i32 && code == 137 && dt >= Duration::from_millis(1500),
        format!("state {state} exit {code} after {dt:?}"),
    );

    call!(c, remove_container, RemoveContainerRequest { container_id: id.clone() })?;
    let gone = call!(c, container_status, ContainerStatusRequest { container_id: id.clone(), verbose: false }).is_err();
    r.check("RemoveContainer", gone, "container still known");

    call!(c, stop_pod_sandbox, StopPodSandboxRequest { pod_sandbox_id: pod.clone() })?;
    let st = call!(c, pod_sandbox_status, PodSandboxStatusRequest { pod_sandbox_id: pod.clone(), verbose: false })?;
    let notready = st.status.as_ref().map(|s| s.state) == Some(PodSandboxState::SandboxNotready as i32);
    r.check("StopPodSandbox: SANDBOX_NOTREADY", notready, format!("{:?}", st.status));
    call!(c, remove_pod_sandbox, RemovePodSandboxRequest { pod_sandbox_id: pod.clone() })?;
    let left = call!(c, list_pod_sandbox, ListPodSandboxRequest { filter: None })?.items;
    r.check("RemovePodSandbox: no pod left", left.is_empty(), format!("{left:?}"));
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: {} SOCKET HANDLER IMAGE LOGDIR", args[0]);
        std::process::exit(2);
    }
    let mut r = Report { pass: 0, fail: 0 };
    let mut c = match connect(args[1].clone()).await {
        Ok(c) => c,
        Err(e) => {
            r.check("connect to the CRI socket", false, e);
            std::process::exit(1);
        }
    };
    if let Err(e) = scenario(&mut c, &mut r, &args[2], &args[3], &args[4]).await {
        r.check("CRI call", false, e);
    }
    // Whatever happened, leave no pod behind.
    if let Ok(l) = call!(c, list_pod_sandbox, ListPodSandboxRequest { filter: None }) {
        for p in l.items {
            let _ = call!(c, stop_pod_sandbox, StopPodSandboxRequest { pod_sandbox_id: p.id.clone() });
            let _ = call!(c, remove_pod_sandbox, RemovePodSandboxRequest { pod_sandbox_id: p.id });
        }
    }
    println!("#    cri: {} passed, {} failed, 0 not applicable", r.pass, r.fail);
    std::process::exit(if r.fail == 0 { 0 } else { 1 });
}
