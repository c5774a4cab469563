//! Programs and their catalogs: registered and staffed by admins, catalog and rules kept by the
//! program's coordinators, readable by anyone signed in (students pick activities from it).

use crate::domain::program::MAX_NAME_LEN;
use crate::domain::values::NonEmptyText;
use crate::domain::{
    CatalogItemId, DomainError, ProgramCode, ProgramCommand, ProgramId, ProgramRules, ProgramState,
    StaffId,
};
use crate::http::access;
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned, minted_id};
use crate::http::docs::{CommandHeaders, CreateHeaders, ProgramAnswer, ProgramCreated};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::paths::{ItemPath, ProgramPath};
use crate::http::pipeline::{Answered, CommandRequest, NoBody, run_program};
use crate::http::problem::Problem;
use crate::http::state::AppState;
use crate::http::view::ProgramView;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

type Body<T> = Result<ApiJson<T>, Problem>;

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Bachelor programme in Nursing", "code": "nursing"}))]
#[serde(deny_unknown_fields)]
pub struct RegisterProgram {
    pub name: String,
    pub code: String,
}

impl TryFrom<(RegisterProgram, ProgramId)> for ProgramCommand {
    type Error = DomainError;
    fn try_from((body, id): (RegisterProgram, ProgramId)) -> Result<Self, DomainError> {
        Ok(ProgramCommand::RegisterProgram {
            id,
            name: NonEmptyText::parse(&body.name, "name", MAX_NAME_LEN)?,
            code: ProgramCode::parse(&body.code)?,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"staff": "coord-anna"}))]
#[serde(deny_unknown_fields)]
pub struct StaffRequest {
    pub staff: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"item": "buddy-programme", "name": "Buddy for an incoming exchange student"}))]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    pub item: String,
    pub name: String,
}

impl TryFrom<AddItem> for ProgramCommand {
    type Error = DomainError;
    fn try_from(body: AddItem) -> Result<Self, DomainError> {
        Ok(ProgramCommand::AddCatalogItem {
            item: CatalogItemId::parse(&body.item)?,
            name: NonEmptyText::parse(&body.name, "name", MAX_NAME_LEN)?,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Participation in language café, participant and/or host"}))]
#[serde(deny_unknown_fields)]
pub struct RenameItem {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"rules": {"required_activities": 3, "allow_repeat_items": false, "written": {"min": 900, "max": 1100}, "oral": {"min_s": 120, "max_s": 180, "tolerance_s": 15}, "instagram": {"min_posts": 3, "words": {"min": 450, "max": 550}}, "final_written": {"min": 2700, "max": 3300}, "final_oral_min_s": 300, "final_deadline_offset_days": 28, "allow_declared_duration": false, "video_platform_hosts": ["play.ki.se"]}}))]
#[serde(deny_unknown_fields)]
pub struct ChangeRules {
    /// The complete rules; fields left out take their defaults.
    pub rules: ProgramRules,
}

/// `POST /programs` (admin): takes a program into CIM. Answers 201 with the program.
#[utoipa::path(
    post,
    path = "/programs",
    tag = "programs",
    params(
        CreateHeaders,
    ),
    request_body = RegisterProgram,
    responses(ProgramCreated)
)]
pub async fn register(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    body: Body<RegisterProgram>,
) -> Result<Versioned<ProgramView>, Problem> {
    access::admin(&caller)?;
    let ApiJson(body) = body?;
    let ctx = meta.context(&state.pool, &caller).await?;
    let id = ProgramId::new(minted_id(&ctx, "program"));
    let command = ProgramCommand::try_from((body, id))?;
    let mut answer = run_program(&state, &meta, &ctx, id, command).await?;
    answer.status = axum::http::StatusCode::CREATED;
    Ok(answer)
}

/// `GET /programs/{program_id}` (anyone signed in): the program with its whole catalog.
#[utoipa::path(
    get,
    path = "/programs/{program_id}",
    tag = "programs",
    params(ProgramPath,),
    responses(ProgramAnswer)
)]
pub async fn show(
    _caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ProgramPath>,
) -> Result<Versioned<ProgramView>, Problem> {
    let (program, version) = state.commands.load_program(path.program_id).await?;
    match &*program {
        ProgramState::Registered(p) => Ok(Versioned::ok(version, ProgramView::new(p, version))),
        ProgramState::Unregistered => Err(DomainError::ProgramNotRegistered.into()),
    }
}

/// Assigning and unassigning a coordinator (admin): told apart only by the command.
async fn coordinators(
    req: CommandRequest<ProgramPath, StaffRequest>,
    command: impl FnOnce(StaffId) -> ProgramCommand,
) -> Answered<ProgramView> {
    access::admin(&req.caller)?;
    req.on_program(|_, body| Ok(command(staff_id(&body?.staff)?)))
        .await
}

fn staff_id(raw: &str) -> Result<StaffId, Problem> {
    StaffId::parse(raw)
        .map_err(|e| Problem::unprocessable(e.code(), e.to_string()).with_field("staff"))
}

/// `POST /programs/{program_id}/coordinators` (admin): `{"staff": "<staff id>"}`.
#[utoipa::path(
    post,
    path = "/programs/{program_id}/coordinators",
    tag = "programs",
    params(
        ProgramPath,
        CommandHeaders,
    ),
    request_body = StaffRequest,
    responses(ProgramAnswer)
)]
pub async fn assign_coordinator(
    req: CommandRequest<ProgramPath, StaffRequest>,
) -> Answered<ProgramView> {
    coordinators(req, |staff| ProgramCommand::AssignCoordinator { staff }).await
}

/// `POST /programs/{program_id}/coordinators/unassign` (admin): `{"staff": "<staff id>"}`.
#[utoipa::path(
    post,
    path = "/programs/{program_id}/coordinators/unassign",
    tag = "programs",
    params(
        ProgramPath,
        CommandHeaders,
    ),
    request_body = StaffRequest,
    responses(ProgramAnswer)
)]
pub async fn unassign_coordinator(
    req: CommandRequest<ProgramPath, StaffRequest>,
) -> Answered<ProgramView> {
    coordinators(req, |staff| ProgramCommand::UnassignCoordinator { staff }).await
}

/// `POST /programs/{program_id}/catalog` (coordinator): `{"item": "tedx", "name": "TEDx"}`.
#[utoipa::path(
    post,
    path = "/programs/{program_id}/catalog",
    tag = "programs",
    params(
        ProgramPath,
        CommandHeaders,
    ),
    request_body = AddItem,
    responses(ProgramAnswer)
)]
pub async fn add_item(req: CommandRequest<ProgramPath, AddItem>) -> Answered<ProgramView> {
    access::coordinator_of(&req.caller, req.path.program_id)?;
    req.on_program(|_, body| Ok(ProgramCommand::try_from(body?)?))
        .await
}

fn item(raw: &str) -> Result<CatalogItemId, Problem> {
    CatalogItemId::parse(raw).map_err(|e| {
        Problem::bad_request("invalid_path_parameter", e.to_string()).with_field("item")
    })
}

/// `POST /programs/{program_id}/catalog/{item}/rename` (coordinator): `{"name": "…"}`.
#[utoipa::path(
    post,
    path = "/programs/{program_id}/catalog/{item}/rename",
    tag = "programs",
    params(
        ItemPath,
        CommandHeaders,
    ),
    request_body = RenameItem,
    responses(ProgramAnswer)
)]
pub async fn rename_item(req: CommandRequest<ItemPath, RenameItem>) -> Answered<ProgramView> {
    access::coordinator_of(&req.caller, req.path.program_id)?;
    req.on_program(|path, body| {
        let item = item(&path.item)?;
        let name =
            NonEmptyText::parse(&body?.name, "name", MAX_NAME_LEN).map_err(DomainError::from)?;
        Ok(ProgramCommand::RenameCatalogItem { item, name })
    })
    .await
}

/// `POST /programs/{program_id}/catalog/{item}/retire` (coordinator), no body: new activities can
/// no longer pick the item; those already logged keep it.
#[utoipa::path(
    post,
    path = "/programs/{program_id}/catalog/{item}/retire",
    tag = "programs",
    params(ItemPath, CommandHeaders,),
    responses(ProgramAnswer)
)]
pub async fn retire_item(req: CommandRequest<ItemPath, NoBody>) -> Answered<ProgramView> {
    access::coordinator_of(&req.caller, req.path.program_id)?;
    req.on_program(|path, _| {
        let item = item(&path.item)?;
        Ok(ProgramCommand::RetireCatalogItem { item })
    })
    .await
}

/// `POST /programs/{program_id}/rules` (coordinator): `{"rules": {…}}`; fields left out keep their
/// defaults.
#[utoipa::path(
    post,
    path = "/programs/{program_id}/rules",
    tag = "programs",
    params(
        ProgramPath,
        CommandHeaders,
    ),
    request_body = ChangeRules,
    responses(ProgramAnswer)
)]
pub async fn change_rules(req: CommandRequest<ProgramPath, ChangeRules>) -> Answered<ProgramView> {
    access::coordinator_of(&req.caller, req.path.program_id)?;
    req.on_program(|_, body| {
        let rules = body?.rules;
        Ok(ProgramCommand::ChangeRules { rules })
    })
    .await
}
