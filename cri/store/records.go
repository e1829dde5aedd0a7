package store

// PodState is the persisted state of a pod sandbox.
//
//	RunPodSandbox ─▶ Creating ──ok──▶ Ready ──StopPodSandbox / init died──▶ NotReady
//	                    │                                                     │
//	                    └──failed (cleanup could not finish)──▶ NotReady ─────┴─RemovePodSandbox─▶ (deleted)
type PodState string

// Pod states.
const (
	PodCreating PodState = "creating"
	PodReady    PodState = "ready"
	PodNotReady PodState = "notready"
)

// Pod is a pod sandbox's record: everything needed to report it and to tear
// it down after a crash, without any process alive.
type Pod struct {
	ID string `json:"id"`
	// Config is the CRI PodSandboxConfig, protobuf-encoded.
	Config    []byte   `json:"config"`
	CreatedAt int64    `json:"createdAt"`
	State     PodState `json:"state"`
	// RuntimeHandler is the handler RunPodSandbox asked for ("" the default).
	RuntimeHandler string `json:"runtimeHandler,omitempty"`
	// Pid is the host pid of the pod init.
	Pid int `json:"pid,omitempty"`
	// CgroupParent is the pod cgroup (containers are nested in it);
	// InitCgroup the pod init's leaf under it.
	CgroupParent string `json:"cgroupParent"`
	InitCgroup   string `json:"initCgroup"`
	// Namespaces maps namespace type (OCI name) to its pinned file; the
	// "network" one is what CNI is called with.
	Namespaces map[string]string `json:"namespaces,omitempty"`
	IPs        []string          `json:"ips,omitempty"`
	// NetworkDone is set once CNI DEL succeeded, so teardown runs once.
	NetworkDone bool `json:"networkDone,omitempty"`
}

// ContainerState is the persisted state of a container.
//
//	CreateContainer ─▶ Created ──StartContainer──▶ Running ──exit──▶ Exited ──RemoveContainer─▶ (deleted)
//	                      └──────────────start failed / pod stopped──────────▲
type ContainerState string

// Container states.
const (
	ContainerCreated ContainerState = "created"
	ContainerRunning ContainerState = "running"
	ContainerExited  ContainerState = "exited"
)

// Container is a container's record.
type Container struct {
	ID    string `json:"id"`
	PodID string `json:"podId"`
	// Config is the CRI ContainerConfig, protobuf-encoded.
	Config []byte `json:"config"`
	// ImageRef is the image as the request named it; ImageID the image's id.
	ImageRef string `json:"imageRef"`
	ImageID  string `json:"imageId"`
	// LogPath is the absolute host path of the CRI log ("" for none).
	LogPath string `json:"logPath,omitempty"`
	// LogDir is the pod's log directory, which LogPath is opened beneath
	// ("" in records from before it was kept: LogPath's directory).
	LogDir string `json:"logDir,omitempty"`
	// Resources are the CRI LinuxContainerResources (protobuf) set by
	// UpdateContainerResources; empty means the config's.
	Resources []byte `json:"resources,omitempty"`
	// StopSignal is the image's STOPSIGNAL.
	StopSignal string         `json:"stopSignal,omitempty"`
	CgroupPath string         `json:"cgroupPath"`
	CreatedAt  int64          `json:"createdAt"`
	StartedAt  int64          `json:"startedAt,omitempty"`
	FinishedAt int64          `json:"finishedAt,omitempty"`
	State      ContainerState `json:"state"`
	Pid        int            `json:"pid,omitempty"`
	ExitCode   int32          `json:"exitCode,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	Message    string         `json:"message,omitempty"`
	// Creating is set from the first write of the record until
	// CreateContainer has made everything; a record that still has it
	// after a crash is of a half-made container, which recovery removes.
	Creating bool `json:"creating,omitempty"`
	// Starting is set before StartContainer's first host side effect and
	// cleared with the running record; a created container that still has
	// it after a crash failed to start (recovery kills what it started).
	Starting bool `json:"starting,omitempty"`
}
