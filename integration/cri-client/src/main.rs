//! Drive containerd's CRI plugin the way the kubelet does, with a RuntimeClass
//! handler, and report each step in integration/lib.sh's format.
//!
//!     ferry-cri-client SOCKET HANDLER IMAGE LOGDIR
//!
//! RunPodSandbox (host network: no CNI here) with `runtime_handler: HANDLER`;
//! three containers (own pid namespace ignoring SIGTERM, own pid namespace
//! exiting on SIGTERM, the pod's shared pid namespace): CreateContainer,
//! StartContainer, ContainerStatus, ExecSync, StopContainer, RemoveContainer;
//! then StopPodSandbox, RemovePodSandbox. Exit status 1 when a
//! step failed; the pod is removed on the way out whatever happened.
//!
//! For a systemd host (containerd's `SystemdCgroup = true`), as the kubelet
//! with its systemd cgroup driver: `FERRY_CRI_CGROUP_PARENT` is the pod's
//! cgroup parent (a slice, e.g. `kubepods-besteffort-podX.slice`), and
//! `FERRY_CRI_OOM=1` adds a container with a 32 MiB memory limit that
//! allocates more: it must exit 137 with reason OOMKilled. `FERRY_CRI_SLOW=1`
//! (an emulated CPU) drops the upper time bound of a stop without grace.

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
            cgroup_parent: std::env::var("FERRY_CRI_CGROUP_PARENT").unwrap_or_default(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container limited to 32 MiB that allocates about 200 MB: the kernel
/// kills it, and the engine must report it as OOMKilled with exit 137.
async fn oom(
    c: &mut Client,
    r: &mut Report,
    pod: &str,
    sb: &PodSandboxConfig,
    image: &str,
) -> Result<(), String> {
    let cfg = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "oom".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec![
            "sh".into(),
            "-c".into(),
            "a=$(yes ferry-oom | head -c 200000000); echo survived".into(),
        ],
        log_path: "oom.log".into(),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: 32 << 20,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = call!(
        c,
        create_container,
        CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(cfg),
            sandbox_config: Some(sb.clone())
        }
    )?
    .container_id;
    call!(
        c,
        start_container,
        StartContainerRequest {
            container_id: id.clone()
        }
    )?;
    let deadline = std::time::Instant::now() + STEP;
    let status = loop {
        let s = call!(
            c,
            container_status,
            ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false
            }
        )?
        .status
        .ok_or("no status")?;
        if s.state == ContainerState::ContainerExited as i32 || std::time::Instant::now() > deadline
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    r.check(
        "oom: a 32 MiB container allocating 200 MB exits 137, reason OOMKilled",
        status.state == ContainerState::ContainerExited as i32
            && status.exit_code == 137
            && status.reason == "OOMKilled",
        format!(
            "state {} exit {} reason {:?}",
            status.state, status.exit_code, status.reason
        ),
    );
    let removed = call!(
        c,
        remove_container,
        RemoveContainerRequest {
            container_id: id.clone()
        }
    );
    r.check("oom RemoveContainer", removed.is_ok(), removed.err().unwrap_or_default());
    Ok(())
}

async fn container_state(c: &mut Client, id: &str) -> Result<(i32, i32), String> {
    let r = call!(
        c,
        container_status,
        ContainerStatusRequest {
            container_id: id.into(),
            verbose: false
        }
    )?;
    let s = r.status.ok_or("no status")?;
    Ok((s.state, s.exit_code))
}

#[allow(clippy::too_many_arguments)]
async fn start(
    c: &mut Client,
    r: &mut Report,
    pod: &str,
    sb: &PodSandboxConfig,
    image: &str,
    name: &str,
    pid: NamespaceMode,
    script: &str,
) -> Result<String, String> {
    let cfg = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: pid as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = call!(
        c,
        create_container,
        CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(cfg),
            sandbox_config: Some(sb.clone())
        }
    )?
    .container_id;
    let (state, _) = container_state(c, &id).await?;
    r.check(
        &format!("{name} CreateContainer: CONTAINER_CREATED"),
        state == ContainerState::ContainerCreated as i32,
        state,
    );
    call!(
        c,
        start_container,
        StartContainerRequest {
            container_id: id.clone()
        }
    )?;
    let (state, _) = container_state(c, &id).await?;
    r.check(
        &format!("{name} StartContainer: CONTAINER_RUNNING"),
        state == ContainerState::ContainerRunning as i32,
        state,
    );
    Ok(id)
}

/// StopContainer with a 2 s grace, expecting exit code `code` (and, when
/// `grace`, that the grace period was waited out), then RemoveContainer.
async fn stop_remove(
    c: &mut Client,
    r: &mut Report,
    id: &str,
    name: &str,
    code: i32,
    grace: bool,
) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    let stopped = call!(
        c,
        stop_container,
        StopContainerRequest {
            container_id: id.into(),
            timeout: 2
        }
    );
    let dt = t0.elapsed();
    let (state, exit) = container_state(c, id).await?;
    // On an emulated CPU (FERRY_CRI_SLOW=1, the TCG guest) a stop that
    // needs no grace can take longer than 1.5 s: its exit code (0 or 143,
    // not 137) alone then says the grace period was not waited out.
    let slow = std::env::var("FERRY_CRI_SLOW").as_deref() == Ok("1");
    let timing = if grace {
        dt >= Duration::from_millis(1500)
    } else {
        slow || dt < Duration::from_millis(1500)
    };
    r.check(
        &format!(
            "{name} StopContainer: CONTAINER_EXITED with exit code {code} ({} ms)",
            dt.as_millis()
        ),
        stopped.is_ok()
            && state == ContainerState::ContainerExited as i32
            && exit == code
            && timing,
        format!(
            "{} state {state} exit {exit} after {dt:?}",
            stopped.err().unwrap_or_default()
        ),
    );
    let removed = call!(
        c,
        remove_container,
        RemoveContainerRequest {
            container_id: id.into()
        }
    );
    let gone = call!(
        c,
        container_status,
        ContainerStatusRequest {
            container_id: id.into(),
            verbose: false
        }
    )
    .is_err();
    r.check(
        &format!("{name} RemoveContainer"),
        removed.is_ok() && gone,
        removed
            .err()
            .unwrap_or_else(|| "container still known".into()),
    );
    Ok(())
}

async fn scenario(
    c: &mut Client,
    r: &mut Report,
    handler: &str,
    image: &str,
    logdir: &str,
) -> Result<(), String> {
    let v = call!(
        c,
        version,
        VersionRequest {
            version: "v1".into()
        }
    )?;
    r.check(
        &format!(
            "Version: {} {} (CRI {})",
            v.runtime_name, v.runtime_version, v.runtime_api_version
        ),
        v.runtime_api_version.starts_with("v1"),
        format!("{v:?}"),
    );

    let sb = sandbox_config(logdir);
    let pod = call!(
        c,
        run_pod_sandbox,
        RunPodSandboxRequest {
            config: Some(sb.clone()),
            runtime_handler: handler.into()
        }
    )?
    .pod_sandbox_id;
    r.check(
        &format!("RunPodSandbox with runtime_handler {handler:?}"),
        !pod.is_empty(),
        "empty id",
    );
    println!("POD {pod}");

    let st = call!(
        c,
        pod_sandbox_status,
        PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: true
        }
    )?;
    let ready = st.status.as_ref().map(|s| s.state) == Some(PodSandboxState::SandboxReady as i32);
    r.check(
        "PodSandboxStatus: SANDBOX_READY",
        ready,
        format!("{:?}", st.status),
    );
    let info = st.info.get("info").cloned().unwrap_or_default();
    r.check(
        &format!("PodSandboxStatus: the sandbox runs under handler {handler:?}"),
        info.contains(&format!("\"runtimeHandler\":\"{handler}\"")),
        format!("info: {}", &info[..info.len().min(400)]),
    );

    if std::env::var("FERRY_CRI_OOM").as_deref() == Ok("1") {
        oom(c, r, &pod, &sb, image).await?;
    }

    // c1: the kubelet's default, a pid namespace of its own; sleep is its
    // pid 1 and ignores SIGTERM, so the stop ends with SIGKILL after 2 s.
    let c1 = start(
        c,
        r,
        &pod,
        &sb,
        image,
        "c1",
        NamespaceMode::Container,
        "echo started; exec sleep 1000",
    )
    .await?;
    let e = call!(
        c,
        exec_sync,
        ExecSyncRequest {
            container_id: c1.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '; exit 3".into()
            ],
            timeout: 30,
        }
    )?;
    let out = String::from_utf8_lossy(&e.stdout).to_string();
    r.check(
        "c1 ExecSync: output, own pid namespace, exit code 3",
        e.exit_code == 3 && out.starts_with("exec-ok\nsleep 1000"),
        format!(
            "exit {} stdout {:?} stderr {:?}",
            e.exit_code,
            out,
            String::from_utf8_lossy(&e.stderr)
        ),
    );
    stop_remove(c, r, &c1, "c1", 137, true).await?;

    // c2: exits 0 on SIGTERM.
    let c2 = start(
        c,
        r,
        &pod,
        &sb,
        image,
        "c2",
        NamespaceMode::Container,
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
    )
    .await?;
    stop_remove(c, r, &c2, "c2", 0, false).await?;

    // c3: the pod's shared pid namespace (shareProcessNamespace: true); sleep
    // is not pid 1 there, so SIGTERM ends it, and the shim then kills the
    // rest of the container's processes (`kill --all` after the init exited).
    let c3 = start(
        c,
        r,
        &pod,
        &sb,
        image,
        "c3",
        NamespaceMode::Pod,
        "exec sleep 1000",
    )
    .await?;
    stop_remove(c, r, &c3, "c3", 143, false).await?;

    call!(
        c,
        stop_pod_sandbox,
        StopPodSandboxRequest {
            pod_sandbox_id: pod.clone()
        }
    )?;
    let st = call!(
        c,
        pod_sandbox_status,
        PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false
        }
    )?;
    let notready =
        st.status.as_ref().map(|s| s.state) == Some(PodSandboxState::SandboxNotready as i32);
    r.check(
        "StopPodSandbox: SANDBOX_NOTREADY",
        notready,
        format!("{:?}", st.status),
    );
    call!(
        c,
        remove_pod_sandbox,
        RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone()
        }
    )?;
    let left = call!(c, list_pod_sandbox, ListPodSandboxRequest { filter: None })?.items;
    r.check(
        "RemovePodSandbox: no pod left",
        left.is_empty(),
        format!("{left:?}"),
    );
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
            let _ = call!(
                c,
                stop_pod_sandbox,
                StopPodSandboxRequest {
                    pod_sandbox_id: p.id.clone()
                }
            );
            let _ = call!(
                c,
                remove_pod_sandbox,
                RemovePodSandboxRequest {
                    pod_sandbox_id: p.id
                }
            );
        }
    }
    println!(
        "#    cri: {} passed, {} failed, 0 not applicable",
        r.pass, r.fail
    );
    std::process::exit(if r.fail == 0 { 0 } else { 1 });
}
