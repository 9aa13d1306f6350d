"""The sandbox account's reference data and its API shapes: pipelines with statuses, users, custom-field
definitions, tags, loss reasons and the ``/api/v4/account`` body.

Static on purpose (the real account's configuration changes rarely, and a fixed one keeps the ids the
tests and dbt seeds name stable). Shapes follow the v4 documentation examples in
``shared/fixtures/amocrm/ogi4i_amocrm-client/``: statuses 142 (won) and 143 (lost) are the same ids in
every pipeline, the "unsorted" status has ``type: 1``; custom-field ids are the spec's (501/502 on
leads, 601/602 PHONE/EMAIL on contacts, 701/702 on companies).

The clinic's configuration for the iDent reception sync (``specs/ident-amocrm-reception-sync.md``) is an
opt-in addition (:class:`ClinicSetup`): two more pipelines, "Первичные приёмы" and "Повторные приёмы",
and the reception fields on leads (801–807). Generated leads never enter those pipelines, so an
account with the clinic setup serves the same generated history as one without.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ACCOUNT_ID = 31_415_926
ACCOUNT_NAME = "Технопарк (sandbox)"
SUBDOMAIN = "sandbox"
TIMEZONE = "Asia/Almaty"
TIMEZONE_OFFSET = "+05:00"
#: Unix seconds the account was created (before any generated history).
ACCOUNT_CREATED_AT = 1_672_531_200  # 2023-01-01T00:00:00Z

WON = 142
LOST = 143
UNSORTED_TYPE = 1

#: Custom-field ids (the spec's examples) and the enum ids of their choices.
LEAD_BIN_FIELD = 501
LEAD_SOURCE_FIELD = 502
CONTACT_PHONE_FIELD = 601
CONTACT_EMAIL_FIELD = 602
COMPANY_BIN_FIELD = 701
COMPANY_INDUSTRY_FIELD = 702


@dataclass(frozen=True, slots=True)
class Status:
    """One pipeline status.

    Attributes:
        id: Status id (142/143 are the system won/lost statuses of every pipeline).
        name: Display name.
        sort: Position in the pipeline.
        type: 1 for the "unsorted" (Неразобранное) status, else 0.
        color: Hex colour.
    """

    id: int
    name: str
    sort: int
    type: int
    color: str


@dataclass(frozen=True, slots=True)
class Pipeline:
    """One sales pipeline.

    Attributes:
        id: Pipeline id.
        name: Display name.
        sort: Position among pipelines.
        is_main: The account's main pipeline.
        weight: Share of new leads that enter this pipeline.
        statuses: Unsorted, the open statuses in order, then won and lost.
    """

    id: int
    name: str
    sort: int
    is_main: bool
    weight: float
    statuses: tuple[Status, ...]

    @property
    def unsorted(self) -> Status:
        """The "unsorted" status (``type: 1``)."""
        return next(s for s in self.statuses if s.type == UNSORTED_TYPE)

    @property
    def open_statuses(self) -> tuple[Status, ...]:
        """Ordinary open statuses by ``sort`` (neither unsorted nor won/lost)."""
        return tuple(s for s in self.statuses if s.type == 0 and s.id not in (WON, LOST))


def make_pipeline(
    pid: int,
    name: str,
    sort: int,
    weight: float,
    first_status: int,
    stages: Sequence[str],
    *,
    won: str = "Успешно реализовано",
    lost: str = "Закрыто и не реализовано",
) -> Pipeline:
    """A pipeline as amoCRM builds one: "Неразобранное", the open ``stages``, won (142) and lost (143).

    Args:
        pid: Pipeline id.
        name: Display name.
        sort: Position among pipelines (1 is the main pipeline).
        weight: Share of generated leads that enter it (0: only written leads do).
        first_status: Id of the unsorted status; the open stages get the next ids.
        stages: Names of the open stages, in order.
        won: Name of status 142 in this pipeline.
        lost: Name of status 143 in this pipeline.

    Returns:
        The pipeline.
    """
    colors = ("#99ccff", "#ffcc66", "#ccc8f9", "#87f2c0", "#fffd7f", "#deff81")
    statuses = [Status(first_status, "Неразобранное", 10, UNSORTED_TYPE, "#c1c1c1")]
    statuses += [
        Status(first_status + k, stage, 10 * (k + 1), 0, colors[(k - 1) % len(colors)])
        for k, stage in enumerate(stages, start=1)
    ]
    statuses += [Status(WON, won, 10_000, 0, "#CCFF66"), Status(LOST, lost, 11_000, 0, "#D5D8DB")]
    return Pipeline(pid, name, sort, sort == 1, weight, tuple(statuses))


PIPELINES: tuple[Pipeline, ...] = (
    make_pipeline(
        7_000_001,
        "Основная воронка",
        1,
        0.65,
        55_000_010,
        ["Первичный контакт", "Переговоры", "Принимают решение", "Согласование договора"],
    ),
    make_pipeline(
        7_000_002,
        "Резиденты технопарка",
        2,
        0.25,
        55_000_020,
        ["Заявка получена", "Экспертиза проекта", "Подписание соглашения"],
    ),
    make_pipeline(7_000_003, "Партнёры", 3, 0.10, 55_000_030, ["Знакомство", "Пилот"]),
)
PIPELINE_BY_ID = {p.id: p for p in PIPELINES}

LOSS_REASONS: tuple[tuple[int, str], ...] = (
    (4_203_001, "Пропала потребность"),
    (4_203_002, "Дорого"),
    (4_203_003, "Выбрали конкурента"),
    (4_203_004, "Не дозвонились"),
)
LOSS_REASON_BY_ID = dict(LOSS_REASONS)

#: Lead tags (id, name); Cyrillic names exercise the ``\\uXXXX`` escaping.
TAGS: tuple[tuple[int, str], ...] = (
    (100_001, "VIP"),
    (100_002, "Повторный"),
    (100_003, "Тендер"),
    (100_004, "Срочно"),
    (100_005, "Партнёр"),
    (100_006, "Госзаказ"),
)
TAG_BY_ID = dict(TAGS)

#: Choices of the select fields: (enum id, value).
LEAD_SOURCES: tuple[tuple[int, str], ...] = (
    (5_021, "Сайт"),
    (5_022, "Instagram"),
    (5_023, "Звонок"),
    (5_024, "Рекомендация"),
    (5_025, "WhatsApp"),
    (5_026, "Выставка"),
)
INDUSTRIES: tuple[tuple[int, str], ...] = (
    (7_021, "IT"),
    (7_022, "Строительство"),
    (7_023, "Торговля"),
    (7_024, "Образование"),
    (7_025, "Медицина"),
    (7_026, "Логистика"),
)
#: Enums of the predefined multitext fields: code → enum id.
PHONE_ENUMS = {"WORK": 6_011, "WORKDD": 6_012, "MOB": 6_013, "FAX": 6_014, "HOME": 6_015, "OTHER": 6_016}
EMAIL_ENUMS = {"WORK": 6_021, "PRIV": 6_022, "OTHER": 6_023}

TASK_TYPES: tuple[tuple[int, str, str], ...] = ((1, "Связаться", "FOLLOW_UP"), (2, "Встреча", "MEETING"))

_USER_NAMES = (
    ("Айгерим Садыкова", "a.sadykova"),
    ("Ерлан Жаксыбеков", "e.zhaksybekov"),
    ("Мария Ковалёва", "m.kovaleva"),
    ("Данияр Нурланов", "d.nurlanov"),
    ("Алия Токаева", "a.tokaeva"),
    ("Сергей Ким", "s.kim"),
    ("Жанна Абенова", "zh.abenova"),
    ("Тимур Есенов", "t.esenov"),
    ("Динара Ахметова", "d.akhmetova"),
    ("Олжас Бекетов", "o.beketov"),
)
USER_ID_BASE = 8_100_000


@dataclass(frozen=True, slots=True)
class User:
    """A user of the account; the first one is the administrator, the rest are managers.

    Attributes:
        id: User id.
        name: Full name.
        email: Login e-mail.
        is_admin: Account administrator (owns no leads in the generated data).
    """

    id: int
    name: str
    email: str
    is_admin: bool


def make_users(count: int) -> tuple[User, ...]:
    """Return the account's users: an administrator followed by ``count - 1`` managers.

    Args:
        count: Number of users, at least 2 (one administrator and one manager).

    Returns:
        Users with ids ``USER_ID_BASE + 1`` upward; names repeat with a number past the name list.

    Raises:
        ValueError: If ``count`` is below 2.
    """
    if count < 2:
        raise ValueError(f"an account needs at least 2 users (admin + manager), got {count}")
    users = []
    for k in range(count):
        name, login = _USER_NAMES[k % len(_USER_NAMES)]
        if k >= len(_USER_NAMES):
            name, login = f"{name} {k // len(_USER_NAMES) + 1}", f"{login}{k // len(_USER_NAMES) + 1}"
        users.append(User(USER_ID_BASE + k + 1, name, f"{login}@technopark.example.kz", k == 0))
    return tuple(users)


def _self_link(root: str, path: str) -> dict[str, Any]:
    return {"self": {"href": f"{root}/api/v4/{path}"}}


def pipeline_body(pipeline: Pipeline, root: str) -> dict[str, Any]:
    """One pipeline as ``GET /api/v4/leads/pipelines`` shows it, statuses embedded.

    Args:
        pipeline: The pipeline.
        root: Scheme and host of the links (``http://127.0.0.1:PORT``).

    Returns:
        The API object.
    """
    statuses = [
        {
            "id": s.id,
            "name": s.name,
            "sort": s.sort,
            "is_editable": s.type == 0 and s.id not in (WON, LOST),
            "pipeline_id": pipeline.id,
            "color": s.color,
            "type": s.type,
            "account_id": ACCOUNT_ID,
            "_links": _self_link(root, f"leads/pipelines/{pipeline.id}/statuses/{s.id}"),
        }
        for s in pipeline.statuses
    ]
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "sort": pipeline.sort,
        "is_main": pipeline.is_main,
        "is_unsorted_on": True,
        "is_archive": False,
        "account_id": ACCOUNT_ID,
        "_links": _self_link(root, f"leads/pipelines/{pipeline.id}"),
        "_embedded": {"statuses": statuses},
    }


def user_body(user: User, root: str) -> dict[str, Any]:
    """One user as ``GET /api/v4/users`` shows it."""
    manager_rights = {"view": "A", "edit": "A", "add": "A", "delete": "M", "export": "D"}
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "lang": "ru",
        "rights": {
            "leads": manager_rights,
            "contacts": manager_rights,
            "companies": manager_rights,
            "tasks": {"edit": "A", "delete": "M"},
            "mail_access": True,
            "catalog_access": True,
            "is_admin": user.is_admin,
            "is_free": False,
            "is_active": True,
            "group_id": None,
            "role_id": None,
        },
        "_links": _self_link(root, f"users/{user.id}"),
    }


def _field(
    fid: int,
    name: str,
    ftype: str,
    entity: str,
    sort: int,
    *,
    code: str | None = None,
    enums: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    predefined = code is not None
    return {
        "id": fid,
        "name": name,
        "type": ftype,
        "account_id": ACCOUNT_ID,
        "code": code,
        "sort": sort,
        "is_api_only": False,
        "enums": enums,
        "group_id": None,
        "required_statuses": [],
        "is_deletable": not predefined,
        "is_predefined": predefined,
        "entity_type": entity,
        "remind": None,
    }


def _enums(choices: tuple[tuple[int, str], ...] | dict[str, int]) -> list[dict[str, Any]]:
    pairs = [(i, v) for v, i in choices.items()] if isinstance(choices, dict) else list(choices)
    return [{"id": i, "value": v, "sort": 10 * (k + 1)} for k, (i, v) in enumerate(pairs)]


#: Custom-field definitions by entity, without links (see :func:`custom_fields_body`).
CUSTOM_FIELDS: dict[str, list[dict[str, Any]]] = {
    "leads": [
        _field(LEAD_BIN_FIELD, "БИН", "text", "leads", 510),
        _field(LEAD_SOURCE_FIELD, "Источник", "select", "leads", 520, enums=_enums(LEAD_SOURCES)),
    ],
    "contacts": [
        _field(
            CONTACT_PHONE_FIELD,
            "Телефон",
            "multitext",
            "contacts",
            4,
            code="PHONE",
            enums=_enums(PHONE_ENUMS),
        ),
        _field(
            CONTACT_EMAIL_FIELD, "Email", "multitext", "contacts", 6, code="EMAIL", enums=_enums(EMAIL_ENUMS)
        ),
    ],
    "companies": [
        _field(COMPANY_BIN_FIELD, "БИН", "text", "companies", 510),
        _field(COMPANY_INDUSTRY_FIELD, "Сфера", "select", "companies", 520, enums=_enums(INDUSTRIES)),
    ],
}


def custom_fields_body(
    entity: str, root: str, fields: Sequence[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Custom fields of ``leads``, ``contacts`` or ``companies`` as ``GET .../custom_fields`` lists them.

    Args:
        entity: ``leads``, ``contacts`` or ``companies``.
        root: Scheme and host of the links.
        fields: The account's definitions of that entity (default: :data:`CUSTOM_FIELDS`, no clinic setup).

    Returns:
        The API objects.
    """
    return [
        {**field, "_links": _self_link(root, f"{entity}/custom_fields/{field['id']}")}
        for field in (CUSTOM_FIELDS[entity] if fields is None else fields)
    ]


# --- the clinic's setup (reception sync) ----------------------------------------------------------------

CLINIC_PRIMARY_PIPELINE = 7_100_001
CLINIC_REPEAT_PIPELINE = 7_100_002
#: Lead fields of the reception sync (the spec's FIELD_MAPPING, with this account's ids).
RECEPTION_ID_FIELD = 801
PATIENT_NUMBER_FIELD = 802
RECEPTION_DATE_FIELD = 803
DOCTOR_FIELD = 804
SERVICE_FIELD = 805
RECEPTION_COST_FIELD = 806
BRANCH_FIELD = 807
#: Branches of the clinic network (the iDent sandbox's OwnCompanies): (enum id, value).
BRANCHES: tuple[tuple[int, str], ...] = (
    (8_071, "Дентал Люкс Есиль"),
    (8_072, "Дентал Люкс Сарыарка"),
    (8_073, "Дентал Люкс Алматы Абая"),
    (8_074, "Дентал Люкс Шымкент"),
    (8_075, "Дентал Люкс Караганда"),
)
_RECEPTION_STAGES = ("Записан на приём", "Подтвердил запись", "Пришёл на приём", "Приём проведён")

CLINIC_PIPELINES: tuple[Pipeline, ...] = tuple(
    make_pipeline(
        pid,
        name,
        sort,
        0.0,
        first_status,
        _RECEPTION_STAGES,
        won="Успешно завершена",
        lost="Не реализована",
    )
    for pid, name, sort, first_status in (
        (CLINIC_PRIMARY_PIPELINE, "Первичные приёмы", 4, 56_000_010),
        (CLINIC_REPEAT_PIPELINE, "Повторные приёмы", 5, 56_000_020),
    )
)
CLINIC_LEAD_FIELDS: tuple[dict[str, Any], ...] = (
    _field(RECEPTION_ID_FIELD, "ID Приёма", "numeric", "leads", 810),
    _field(PATIENT_NUMBER_FIELD, "Порядковый номер в МИС", "text", "leads", 820),
    _field(RECEPTION_DATE_FIELD, "Дата приёма", "date_time", "leads", 830),
    _field(DOCTOR_FIELD, "Врач", "text", "leads", 840),
    _field(SERVICE_FIELD, "Услуга", "text", "leads", 850),
    _field(RECEPTION_COST_FIELD, "Стоимость приёма", "numeric", "leads", 860),
    _field(BRANCH_FIELD, "Филиал", "select", "leads", 870, enums=_enums(BRANCHES)),
)


@dataclass(frozen=True)
class ClinicSetup:
    """The clinic's part of the account, for the iDent → amoCRM reception sync; every part replaceable.

    Attributes:
        pipelines: Pipelines added to the account (default: "Первичные приёмы" 7100001 and "Повторные
            приёмы" 7100002, each: unsorted, four stages, 142 "Успешно завершена", 143 "Не реализована").
        lead_fields: Custom-field definitions added to leads (default: 801 ID Приёма numeric, 802
            Порядковый номер в МИС text, 803 Дата приёма date_time, 804 Врач, 805 Услуга text, 806
            Стоимость приёма numeric, 807 Филиал select). The contacts' phone field is the account's 601.
        responsible_user_id: The user the sync assigns leads to (must be one of the account's users).
    """

    pipelines: tuple[Pipeline, ...] = CLINIC_PIPELINES
    lead_fields: tuple[dict[str, Any], ...] = CLINIC_LEAD_FIELDS
    responsible_user_id: int = USER_ID_BASE + 2


#: The default clinic setup.
CLINIC = ClinicSetup()


def account_body(root: str, with_: set[str], users: tuple[User, ...]) -> dict[str, Any]:
    """``GET /api/v4/account``; like the real API, ``_embedded`` parts only when asked with ``with=``.

    Args:
        root: Scheme and host of the links.
        with_: Requested embeds: ``datetime_settings`` (time zone), ``task_types``, ``users_groups``.
        users: The account's users (the administrator is the current user).

    Returns:
        The API object.
    """
    embedded: dict[str, Any] = {}
    if "users_groups" in with_:
        embedded["users_groups"] = [{"id": 0, "name": "Отдел продаж", "uuid": None}]
    if "task_types" in with_:
        embedded["task_types"] = [
            {"id": i, "name": n, "color": None, "icon_id": None, "code": c} for i, n, c in TASK_TYPES
        ]
    if "datetime_settings" in with_:
        embedded["datetime_settings"] = {
            "date_pattern": "d.m.Y H:i",
            "short_date_pattern": "d.m.Y",
            "short_time_pattern": "H:i",
            "date_format": "d.m.Y",
            "time_format": "H:i:s",
            "timezone": TIMEZONE,
            "timezone_offset": TIMEZONE_OFFSET,
        }
    body: dict[str, Any] = {
        "id": ACCOUNT_ID,
        "name": ACCOUNT_NAME,
        "subdomain": SUBDOMAIN,
        "created_at": ACCOUNT_CREATED_AT,
        "created_by": users[0].id,
        "updated_at": ACCOUNT_CREATED_AT,
        "updated_by": users[0].id,
        "current_user_id": users[0].id,
        "country": "KZ",
        "currency": "KZT",
        "currency_symbol": "₸",
        "customers_mode": "disabled",
        "is_unsorted_on": True,
        "mobile_feature_version": 0,
        "is_loss_reason_enabled": True,
        "is_helpbot_enabled": False,
        "is_technical_account": False,
        "contact_name_display_order": 1,
        "amojo_id": "5b0c2e6a-7e55-4f1e-9a0e-3d7f2b9c1a11",
        "uuid": "9f3e1c55-0b7a-4d6e-8f21-6a4d2c9b7e02",
        "version": 11,
        "_links": _self_link(root, "account"),
    }
    if embedded:
        body["_embedded"] = embedded
    return body
