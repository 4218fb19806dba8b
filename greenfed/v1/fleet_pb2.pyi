from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CalibrationProfile(_message.Message):
    __slots__ = ("idle_power_w", "kappa", "cycles_per_sample", "uplink_bytes_per_s", "energy_per_byte_j", "f_min_hz", "f_max_hz", "f_steps_hz", "source", "scope", "estimated", "created_at", "single_point", "workload", "clock")
    IDLE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    KAPPA_FIELD_NUMBER: _ClassVar[int]
    CYCLES_PER_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    UPLINK_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    ENERGY_PER_BYTE_J_FIELD_NUMBER: _ClassVar[int]
    F_MIN_HZ_FIELD_NUMBER: _ClassVar[int]
    F_MAX_HZ_FIELD_NUMBER: _ClassVar[int]
    F_STEPS_HZ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SINGLE_POINT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    idle_power_w: float
    kappa: float
    cycles_per_sample: float
    uplink_bytes_per_s: float
    energy_per_byte_j: float
    f_min_hz: float
    f_max_hz: float
    f_steps_hz: _containers.RepeatedScalarFieldContainer[float]
    source: str
    scope: str
    estimated: bool
    created_at: str
    single_point: bool
    workload: str
    clock: str
    def __init__(self, idle_power_w: _Optional[float] = ..., kappa: _Optional[float] = ..., cycles_per_sample: _Optional[float] = ..., uplink_bytes_per_s: _Optional[float] = ..., energy_per_byte_j: _Optional[float] = ..., f_min_hz: _Optional[float] = ..., f_max_hz: _Optional[float] = ..., f_steps_hz: _Optional[_Iterable[float]] = ..., source: _Optional[str] = ..., scope: _Optional[str] = ..., estimated: bool = ..., created_at: _Optional[str] = ..., single_point: bool = ..., workload: _Optional[str] = ..., clock: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("agent_version", "samples", "profile", "board", "dvfs_available", "dvfs_reason", "bits_min", "bits_max", "link_mbps", "train_device", "device_name")
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    BOARD_FIELD_NUMBER: _ClassVar[int]
    DVFS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    DVFS_REASON_FIELD_NUMBER: _ClassVar[int]
    BITS_MIN_FIELD_NUMBER: _ClassVar[int]
    BITS_MAX_FIELD_NUMBER: _ClassVar[int]
    LINK_MBPS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    agent_version: str
    samples: int
    profile: CalibrationProfile
    board: str
    dvfs_available: bool
    dvfs_reason: str
    bits_min: int
    bits_max: int
    link_mbps: float
    train_device: str
    device_name: str
    def __init__(self, agent_version: _Optional[str] = ..., samples: _Optional[int] = ..., profile: _Optional[_Union[CalibrationProfile, _Mapping]] = ..., board: _Optional[str] = ..., dvfs_available: bool = ..., dvfs_reason: _Optional[str] = ..., bits_min: _Optional[int] = ..., bits_max: _Optional[int] = ..., link_mbps: _Optional[float] = ..., train_device: _Optional[str] = ..., device_name: _Optional[str] = ...) -> None: ...

class RegisterReply(_message.Message):
    __slots__ = ("device_id", "model_config_json", "run_id", "poll_interval_s", "max_update_bytes", "chunk_bytes")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    MAX_UPDATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    model_config_json: str
    run_id: str
    poll_interval_s: float
    max_update_bytes: int
    chunk_bytes: int
    def __init__(self, device_id: _Optional[str] = ..., model_config_json: _Optional[str] = ..., run_id: _Optional[str] = ..., poll_interval_s: _Optional[float] = ..., max_update_bytes: _Optional[int] = ..., chunk_bytes: _Optional[int] = ...) -> None: ...

class WaitRequest(_message.Message):
    __slots__ = ("last_round",)
    LAST_ROUND_FIELD_NUMBER: _ClassVar[int]
    last_round: int
    def __init__(self, last_round: _Optional[int] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("status", "round", "mode", "bits", "block_size", "freq_hz", "local_steps", "batch_size", "learning_rate", "deadline_unix", "deadline_s", "model_sha256", "seed", "predicted_energy_j", "scheme")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Assignment.Status]
        ASSIGNED: _ClassVar[Assignment.Status]
        WAIT: _ClassVar[Assignment.Status]
        FINISHED: _ClassVar[Assignment.Status]
    STATUS_UNSPECIFIED: Assignment.Status
    ASSIGNED: Assignment.Status
    WAIT: Assignment.Status
    FINISHED: Assignment.Status
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    FREQ_HZ_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    status: Assignment.Status
    round: int
    mode: str
    bits: int
    block_size: int
    freq_hz: float
    local_steps: int
    batch_size: int
    learning_rate: float
    deadline_unix: float
    deadline_s: float
    model_sha256: str
    seed: int
    predicted_energy_j: float
    scheme: str
    def __init__(self, status: _Optional[_Union[Assignment.Status, str]] = ..., round: _Optional[int] = ..., mode: _Optional[str] = ..., bits: _Optional[int] = ..., block_size: _Optional[int] = ..., freq_hz: _Optional[float] = ..., local_steps: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., deadline_unix: _Optional[float] = ..., deadline_s: _Optional[float] = ..., model_sha256: _Optional[str] = ..., seed: _Optional[int] = ..., predicted_energy_j: _Optional[float] = ..., scheme: _Optional[str] = ...) -> None: ...

class DownloadRequest(_message.Message):
    __slots__ = ("round", "offset")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    round: int
    offset: int
    def __init__(self, round: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ModelChunk(_message.Message):
    __slots__ = ("round", "offset", "total_bytes", "sha256", "data")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    round: int
    offset: int
    total_bytes: int
    sha256: str
    data: bytes
    def __init__(self, round: _Optional[int] = ..., offset: _Optional[int] = ..., total_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadManifest(_message.Message):
    __slots__ = ("round", "total_bytes", "sha256", "offset", "samples", "bits", "mode")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    round: int
    total_bytes: int
    sha256: str
    offset: int
    samples: int
    bits: int
    mode: str
    def __init__(self, round: _Optional[int] = ..., total_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., offset: _Optional[int] = ..., samples: _Optional[int] = ..., bits: _Optional[int] = ..., mode: _Optional[str] = ...) -> None: ...

class UploadChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class UploadMessage(_message.Message):
    __slots__ = ("manifest", "chunk")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    manifest: UploadManifest
    chunk: UploadChunk
    def __init__(self, manifest: _Optional[_Union[UploadManifest, _Mapping]] = ..., chunk: _Optional[_Union[UploadChunk, _Mapping]] = ...) -> None: ...

class UploadReply(_message.Message):
    __slots__ = ("round", "received_bytes", "accepted")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    round: int
    received_bytes: int
    accepted: bool
    def __init__(self, round: _Optional[int] = ..., received_bytes: _Optional[int] = ..., accepted: bool = ...) -> None: ...

class UploadStatusRequest(_message.Message):
    __slots__ = ("round", "sha256")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    round: int
    sha256: str
    def __init__(self, round: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class UploadStatusReply(_message.Message):
    __slots__ = ("received_bytes", "complete")
    RECEIVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    received_bytes: int
    complete: bool
    def __init__(self, received_bytes: _Optional[int] = ..., complete: bool = ...) -> None: ...

class EnergyWindow(_message.Message):
    __slots__ = ("name", "energy_j", "dynamic_energy_j", "duration_s", "mean_power_w", "peak_power_w", "samples", "mean_freq_hz", "source", "scope", "estimated", "gpu_energy_j", "gpu_rail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MEAN_POWER_W_FIELD_NUMBER: _ClassVar[int]
    PEAK_POWER_W_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MEAN_FREQ_HZ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    GPU_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    GPU_RAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    energy_j: float
    dynamic_energy_j: float
    duration_s: float
    mean_power_w: float
    peak_power_w: float
    samples: int
    mean_freq_hz: float
    source: str
    scope: str
    estimated: bool
    gpu_energy_j: float
    gpu_rail: str
    def __init__(self, name: _Optional[str] = ..., energy_j: _Optional[float] = ..., dynamic_energy_j: _Optional[float] = ..., duration_s: _Optional[float] = ..., mean_power_w: _Optional[float] = ..., peak_power_w: _Optional[float] = ..., samples: _Optional[int] = ..., mean_freq_hz: _Optional[float] = ..., source: _Optional[str] = ..., scope: _Optional[str] = ..., estimated: bool = ..., gpu_energy_j: _Optional[float] = ..., gpu_rail: _Optional[str] = ...) -> None: ...

class RoundReport(_message.Message):
    __slots__ = ("round", "windows", "dvfs_applied", "dvfs_reason", "applied_freq_hz", "bytes_up", "samples", "steps", "loss_first", "loss_last", "emulated_link", "link_mbps", "update_sq_error", "update_error_bound", "update_range", "update_norm", "bits", "error", "train_time_s", "upload_time_s", "download_time_s", "link_kind", "link_profile", "train_device", "personal_fd", "global_fd_own", "own_eval_images", "pool")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    DVFS_APPLIED_FIELD_NUMBER: _ClassVar[int]
    DVFS_REASON_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FREQ_HZ_FIELD_NUMBER: _ClassVar[int]
    BYTES_UP_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIRST_FIELD_NUMBER: _ClassVar[int]
    LOSS_LAST_FIELD_NUMBER: _ClassVar[int]
    EMULATED_LINK_FIELD_NUMBER: _ClassVar[int]
    LINK_MBPS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SQ_ERROR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_ERROR_BOUND_FIELD_NUMBER: _ClassVar[int]
    UPDATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_NORM_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRAIN_TIME_S_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_TIME_S_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_TIME_S_FIELD_NUMBER: _ClassVar[int]
    LINK_KIND_FIELD_NUMBER: _ClassVar[int]
    LINK_PROFILE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_DEVICE_FIELD_NUMBER: _ClassVar[int]
    PERSONAL_FD_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_FD_OWN_FIELD_NUMBER: _ClassVar[int]
    OWN_EVAL_IMAGES_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    round: int
    windows: _containers.RepeatedCompositeFieldContainer[EnergyWindow]
    dvfs_applied: bool
    dvfs_reason: str
    applied_freq_hz: float
    bytes_up: int
    samples: int
    steps: int
    loss_first: float
    loss_last: float
    emulated_link: bool
    link_mbps: float
    update_sq_error: float
    update_error_bound: float
    update_range: float
    update_norm: float
    bits: int
    error: str
    train_time_s: float
    upload_time_s: float
    download_time_s: float
    link_kind: str
    link_profile: str
    train_device: str
    personal_fd: float
    global_fd_own: float
    own_eval_images: int
    pool: PoolReport
    def __init__(self, round: _Optional[int] = ..., windows: _Optional[_Iterable[_Union[EnergyWindow, _Mapping]]] = ..., dvfs_applied: bool = ..., dvfs_reason: _Optional[str] = ..., applied_freq_hz: _Optional[float] = ..., bytes_up: _Optional[int] = ..., samples: _Optional[int] = ..., steps: _Optional[int] = ..., loss_first: _Optional[float] = ..., loss_last: _Optional[float] = ..., emulated_link: bool = ..., link_mbps: _Optional[float] = ..., update_sq_error: _Optional[float] = ..., update_error_bound: _Optional[float] = ..., update_range: _Optional[float] = ..., update_norm: _Optional[float] = ..., bits: _Optional[int] = ..., error: _Optional[str] = ..., train_time_s: _Optional[float] = ..., upload_time_s: _Optional[float] = ..., download_time_s: _Optional[float] = ..., link_kind: _Optional[str] = ..., link_profile: _Optional[str] = ..., train_device: _Optional[str] = ..., personal_fd: _Optional[float] = ..., global_fd_own: _Optional[float] = ..., own_eval_images: _Optional[int] = ..., pool: _Optional[_Union[PoolReport, _Mapping]] = ...) -> None: ...

class PoolMemberReport(_message.Message):
    __slots__ = ("member_id", "rank", "windows", "bytes_sent", "bytes_received", "freq_hz", "dvfs_applied", "dvfs_reason", "stage_start", "stage_stop", "compute_s", "exchange_s", "predicted_energy_j")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FREQ_HZ_FIELD_NUMBER: _ClassVar[int]
    DVFS_APPLIED_FIELD_NUMBER: _ClassVar[int]
    DVFS_REASON_FIELD_NUMBER: _ClassVar[int]
    STAGE_START_FIELD_NUMBER: _ClassVar[int]
    STAGE_STOP_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_S_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_S_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    rank: int
    windows: _containers.RepeatedCompositeFieldContainer[EnergyWindow]
    bytes_sent: int
    bytes_received: int
    freq_hz: float
    dvfs_applied: bool
    dvfs_reason: str
    stage_start: int
    stage_stop: int
    compute_s: float
    exchange_s: float
    predicted_energy_j: float
    def __init__(self, member_id: _Optional[str] = ..., rank: _Optional[int] = ..., windows: _Optional[_Iterable[_Union[EnergyWindow, _Mapping]]] = ..., bytes_sent: _Optional[int] = ..., bytes_received: _Optional[int] = ..., freq_hz: _Optional[float] = ..., dvfs_applied: bool = ..., dvfs_reason: _Optional[str] = ..., stage_start: _Optional[int] = ..., stage_stop: _Optional[int] = ..., compute_s: _Optional[float] = ..., exchange_s: _Optional[float] = ..., predicted_energy_j: _Optional[float] = ...) -> None: ...

class PoolReport(_message.Message):
    __slots__ = ("parallelism", "plan", "engine", "micro_batches", "members", "energy_j", "dynamic_energy_j", "predicted_energy_j", "predicted_step_s", "measured_step_s", "feasible", "reason")
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    MICRO_BATCHES_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_STEP_S_FIELD_NUMBER: _ClassVar[int]
    MEASURED_STEP_S_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    parallelism: str
    plan: str
    engine: str
    micro_batches: int
    members: _containers.RepeatedCompositeFieldContainer[PoolMemberReport]
    energy_j: float
    dynamic_energy_j: float
    predicted_energy_j: float
    predicted_step_s: float
    measured_step_s: float
    feasible: bool
    reason: str
    def __init__(self, parallelism: _Optional[str] = ..., plan: _Optional[str] = ..., engine: _Optional[str] = ..., micro_batches: _Optional[int] = ..., members: _Optional[_Iterable[_Union[PoolMemberReport, _Mapping]]] = ..., energy_j: _Optional[float] = ..., dynamic_energy_j: _Optional[float] = ..., predicted_energy_j: _Optional[float] = ..., predicted_step_s: _Optional[float] = ..., measured_step_s: _Optional[float] = ..., feasible: bool = ..., reason: _Optional[str] = ...) -> None: ...

class ReportReply(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    def __init__(self, recorded: bool = ...) -> None: ...
