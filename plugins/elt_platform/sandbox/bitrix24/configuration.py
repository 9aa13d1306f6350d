"""The sandbox portal's configuration: deal funnels (categories) with their stages, lead statuses, deal
sources and user-field definitions, plus the API shapes of each (``crm.status.list``,
``crm.dealcategory.list``, ``crm.dealcategory.stage.list``, ``crm.*.userfield.list``).

Default portal: funnel 0 with Bitrix24's standard stages (names and colours from the docs'
``crm.status.list.200.json``) and funnel 2 "Клиника" modelling the iDent → Bitrix24 spec's sales funnel
(consultation scheduled → consultation done → plan presentation (manual) → prepayment received (manual)
→ waiting list (manual) → treatment → won / lost). As on real portals, a funnel other than 0 prefixes its
stage ids with ``C<id>:`` and renamed system stages keep their system ids (``C2:PREPARATION`` is
"Консультация проведена"), custom ones get ``UC_XXXXXX`` ids; clients must map stages by configuration,
never by name. :data:`CLINIC_FUNNEL` names the spec's stages.
"""

from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from typing import Any

#: Semantic group letters as deals and leads carry them (``STAGE_SEMANTIC_ID``, ``STATUS_SEMANTIC_ID``).
SEMANTIC_LETTERS = {"process": "P", "success": "S", "failure": "F", "apology": "F"}
#: Kazakhstan's single time zone since March 2024 (Asia/Almaty), as the portal prints datetimes.
KAZAKHSTAN = timezone(timedelta(hours=5))


@dataclass(frozen=True, slots=True)
class Status:
    """One deal stage or lead status.

    Attributes:
        status_id: The id as the API shows it: bare in funnel 0 and for leads, ``C<cat>:`` elsewhere.
        name: Display name.
        sort: Position (``SORT``).
        semantics: ``process``, ``success``, ``failure`` or ``apology`` (a second failure stage).
        color: Hex colour.
        system: A stage every funnel has (``SYSTEM: "Y"``: the first one, won and lost).
    """

    status_id: str
    name: str
    sort: int
    semantics: str = "process"
    color: str = "#39A8EF"
    system: bool = False

    @property
    def letter(self) -> str:
        """``P``, ``S`` or ``F`` (what a deal's ``STAGE_SEMANTIC_ID`` shows)."""
        return SEMANTIC_LETTERS[self.semantics]


@dataclass(frozen=True, slots=True)
class Category:
    """One deal funnel (Bitrix24 "направление").

    Attributes:
        id: ``CATEGORY_ID``; 0 is the default funnel.
        name: Display name.
        sort: Position among funnels.
        stages: Its stages in order; the first is where new deals start.
        created: ``CREATED_DATE`` as ``crm.dealcategory.list`` prints it.
    """

    id: int
    name: str
    sort: int
    stages: tuple[Status, ...]
    created: str = "2024-01-15T10:00:00+05:00"

    @property
    def entity_id(self) -> str:
        """``ENTITY_ID`` of its stages in ``crm.status.list``: ``DEAL_STAGE`` or ``DEAL_STAGE_<id>``."""
        return "DEAL_STAGE" if self.id == 0 else f"DEAL_STAGE_{self.id}"

    def stage(self, status_id: str) -> Status | None:
        """The stage with this id, or None when it is not one of this funnel's."""
        return next((stage for stage in self.stages if stage.status_id == status_id), None)


@dataclass(frozen=True, slots=True)
class UserField:
    """One ``UF_CRM_*`` user field.

    Attributes:
        field_name: ``UF_CRM_…``.
        user_type_id: ``string``, ``integer``, ``double``, ``datetime``, ``date``, ``boolean``,
            ``enumeration`` (values kept as sent) …
        label: Label shown when ``crm.*.userfield.list`` is asked with ``filter[LANG]``.
        multiple: Holds a list of values.
        mandatory: ``MANDATORY`` flag (reported, not enforced, as REST writes skip it).
        sort: ``SORT``.
    """

    field_name: str
    user_type_id: str = "string"
    label: str = ""
    multiple: bool = False
    mandatory: bool = False
    sort: int = 100


def _funnel(category: int, stages: list[tuple[str, str, str, str]]) -> tuple[Status, ...]:
    prefix = "" if category == 0 else f"C{category}:"
    system = {"NEW", "WON", "LOSE"}
    return tuple(
        Status(prefix + code, name, 10 * (index + 1), semantics, color, code in system)
        for index, (code, name, semantics, color) in enumerate(stages)
    )


#: Bitrix24's standard stages of the default funnel (``crm.status.list.200.json``).
DEFAULT_STAGES = _funnel(
    0,
    [
        ("NEW", "Новая", "process", "#39A8EF"),
        ("PREPARATION", "Подготовка документов", "process", "#2FC6F6"),
        ("PREPAYMENT_INVOICE", "Cчет на предоплату", "process", "#55D0E0"),
        ("EXECUTING", "В работе", "process", "#47E4C2"),
        ("FINAL_INVOICE", "Финальный счет", "process", "#FFA900"),
        ("WON", "Сделка успешна", "success", "#7BD500"),
        ("LOSE", "Сделка провалена", "failure", "#FF5752"),
        ("APOLOGY", "Анализ причины провала", "apology", "#FF5752"),
    ],
)
CLINIC = 2
CLINIC_STAGES = _funnel(
    CLINIC,
    [
        ("NEW", "Запись на консультацию", "process", "#39A8EF"),
        ("PREPARATION", "Консультация проведена", "process", "#2FC6F6"),
        ("PREPAYMENT_INVOICE", "Презентация плана лечения", "process", "#55D0E0"),
        ("EXECUTING", "Получена предоплата", "process", "#47E4C2"),
        ("UC_W4LIST", "Лист ожидания", "process", "#FFA900"),
        ("FINAL_INVOICE", "Лечение", "process", "#1EC6FA"),
        ("WON", "Успешно", "success", "#7BD500"),
        ("LOSE", "Не успешно", "failure", "#FF5752"),
        ("APOLOGY", "Анализ причины провала", "apology", "#FF5752"),
    ],
)
#: The spec's funnel ("Стадии воронки продаж") → stage ids of the default clinic funnel.
CLINIC_FUNNEL = {
    "consultation_scheduled": "C2:NEW",
    "consultation_done": "C2:PREPARATION",
    "plan_presentation": "C2:PREPAYMENT_INVOICE",
    "prepayment_received": "C2:EXECUTING",
    "waiting_list": "C2:UC_W4LIST",
    "treatment": "C2:FINAL_INVOICE",
    "won": "C2:WON",
    "lose": "C2:LOSE",
}
#: Stages people set by hand; the spec forbids the sync to move a deal out of them.
CLINIC_MANUAL_STAGES = frozenset(
    CLINIC_FUNNEL[name] for name in ("plan_presentation", "prepayment_received", "waiting_list")
)
CATEGORIES = (
    Category(0, "Общая", 100, DEFAULT_STAGES),
    Category(CLINIC, "Клиника", 200, CLINIC_STAGES),
)
#: Default lead statuses; ``CONVERTED`` is the success status integrations set after "converting".
LEAD_STATUSES = (
    Status("NEW", "Не обработан", 10, "process", "#2FC6F6", True),
    Status("IN_PROCESS", "В работе", 20, "process", "#55D0E0"),
    Status("PROCESSED", "Обработан", 30, "process", "#FFA900"),
    Status("CONVERTED", "Качественный лид", 40, "success", "#7BD500", True),
    Status("JUNK", "Некачественный лид", 50, "failure", "#FF5752", True),
)
#: ``SOURCE`` dictionary (leads' and deals' ``SOURCE_ID``).
SOURCES = tuple(
    Status(code, name, 10 * (index + 1))
    for index, (code, name) in enumerate(
        [
            ("CALL", "Звонок"),
            ("EMAIL", "Электронная почта"),
            ("WEB", "Веб-сайт"),
            ("ADVERTISING", "Реклама"),
            ("RECOMMENDATION", "По рекомендации"),
            ("OTHER", "Другое"),
        ]
    )
)
#: Deal user fields the iDent sync writes (external id ``F<branch>_<reception id>`` and reception data).
DEAL_USER_FIELDS = (
    UserField("UF_CRM_IDENT_ID", "string", "ID записи iDent", sort=100),
    UserField("UF_CRM_IDENT_RECEPTION_ID", "string", "ID приёма", sort=110),
    UserField("UF_CRM_IDENT_PATIENT_NUMBER", "string", "Номер карты пациента", sort=120),
    UserField("UF_CRM_RECEPTION_START", "datetime", "Начало приёма", sort=130),
    UserField("UF_CRM_RECEPTION_END", "datetime", "Окончание приёма", sort=140),
    UserField("UF_CRM_DOCTOR", "string", "Врач", sort=150),
    UserField("UF_CRM_DOCTOR_SPECIALTY", "string", "Специальность врача", sort=160),
    UserField("UF_CRM_SERVICES", "string", "Услуги", sort=170),
    UserField("UF_CRM_BRANCH", "string", "Филиал", sort=180),
    UserField("UF_CRM_CABINET", "string", "Кабинет", sort=190),
    UserField("UF_CRM_CANCEL_REASON", "string", "Причина отмены", sort=200),
)

#: ``SETTINGS`` of a user field by type, as ``crm.*.userfield.list`` shows them.
_SETTINGS: dict[str, dict[str, Any]] = {
    "string": {"SIZE": 20, "ROWS": 1, "REGEXP": "", "MIN_LENGTH": 0, "MAX_LENGTH": 0, "DEFAULT_VALUE": ""},
    "integer": {"SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
    "double": {"PRECISION": 2, "SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
    "datetime": {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}, "USE_SECOND": "Y", "USE_TIMEZONE": "N"},
    "date": {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}},
    "boolean": {"DEFAULT_VALUE": 0, "DISPLAY": "CHECKBOX", "LABEL": ["", ""], "LABEL_CHECKBOX": ""},
}


@dataclass(frozen=True)
class PortalConfig:
    """Everything about a portal that is configuration, not data.

    Attributes:
        categories: Deal funnels, the default one (id 0) first.
        lead_statuses: Lead statuses in order; the first is where new leads start.
        sources: The ``SOURCE`` dictionary.
        deal_user_fields: ``UF_CRM_*`` fields of deals (undeclared ones are ignored on writes).
        contact_user_fields: … of contacts.
        lead_user_fields: … of leads.
        currency: Base currency (``CURRENCY_ID`` when none is sent).
        timezone: Offset the portal prints datetimes in.
    """

    categories: tuple[Category, ...] = CATEGORIES
    lead_statuses: tuple[Status, ...] = LEAD_STATUSES
    sources: tuple[Status, ...] = SOURCES
    deal_user_fields: tuple[UserField, ...] = DEAL_USER_FIELDS
    contact_user_fields: tuple[UserField, ...] = ()
    lead_user_fields: tuple[UserField, ...] = ()
    currency: str = "KZT"
    timezone: tzinfo = field(default=KAZAKHSTAN)

    def __post_init__(self) -> None:
        ids = [category.id for category in self.categories]
        if 0 not in ids or len(set(ids)) != len(ids):
            raise ValueError(f"categories need unique ids including the default 0, got {ids}")
        if any(not category.stages for category in self.categories) or not self.lead_statuses:
            raise ValueError("every funnel and the lead statuses need at least one status")

    def category(self, category_id: int) -> Category | None:
        """The funnel with this id, or None."""
        return next((category for category in self.categories if category.id == category_id), None)

    def user_fields(self, entity: str) -> tuple[UserField, ...]:
        """User fields of ``contact``, ``lead`` or ``deal``."""
        return {
            "contact": self.contact_user_fields,
            "lead": self.lead_user_fields,
            "deal": self.deal_user_fields,
        }[entity]

    def status_records(self) -> list[dict[str, Any]]:
        """Every dictionary entry as ``crm.status.list`` answers them (ids numbered 101, 103, … in order)."""
        groups: list[tuple[str, str | None, tuple[Status, ...], bool]] = [
            ("STATUS", None, self.lead_statuses, True),
            ("SOURCE", None, self.sources, False),
        ]
        groups += [
            (category.entity_id, None if category.id == 0 else str(category.id), category.stages, True)
            for category in self.categories
        ]
        records: list[dict[str, Any]] = []
        for entity_id, category_id, statuses, semantic in groups:
            for status in statuses:
                record: dict[str, Any] = {
                    "ID": str(101 + 2 * len(records)),
                    "ENTITY_ID": entity_id,
                    "STATUS_ID": status.status_id,
                    "NAME": status.name,
                    "NAME_INIT": status.name if status.system else "",
                    "SORT": str(status.sort),
                    "SYSTEM": "Y" if status.system else "N",
                    "CATEGORY_ID": category_id,
                    "COLOR": status.color if semantic else None,
                    "SEMANTICS": None if status.letter == "P" or not semantic else status.letter,
                }
                if semantic:
                    record["EXTRA"] = {"SEMANTICS": status.semantics, "COLOR": status.color}
                records.append(record)
        return records

    def category_records(self) -> list[dict[str, Any]]:
        """``crm.dealcategory.list`` records: every funnel but the default one, which that method omits."""
        return [
            {
                "ID": str(category.id),
                "CREATED_DATE": category.created,
                "NAME": category.name,
                "IS_LOCKED": "N",
                "SORT": str(category.sort),
            }
            for category in self.categories
            if category.id != 0
        ]

    def user_field_records(self, entity: str, *, with_labels: bool) -> list[dict[str, Any]]:
        """``crm.<entity>.userfield.list`` records; labels only when asked (the API's ``filter[LANG]``)."""
        base = {"contact": 6100, "lead": 6300, "deal": 6500}[entity]
        records: list[dict[str, Any]] = []
        for index, user_field in enumerate(self.user_fields(entity)):
            record: dict[str, Any] = {
                "ID": str(base + 2 * index),
                "ENTITY_ID": f"CRM_{entity.upper()}",
                "FIELD_NAME": user_field.field_name,
                "USER_TYPE_ID": user_field.user_type_id,
                "XML_ID": None,
                "SORT": str(user_field.sort),
                "MULTIPLE": "Y" if user_field.multiple else "N",
                "MANDATORY": "Y" if user_field.mandatory else "N",
                "SHOW_FILTER": "E",
                "SHOW_IN_LIST": "Y",
                "EDIT_IN_LIST": "Y",
                "IS_SEARCHABLE": "N",
                "SETTINGS": dict(_SETTINGS.get(user_field.user_type_id, {})),
            }
            if with_labels:
                label = user_field.label or user_field.field_name
                record |= {
                    "EDIT_FORM_LABEL": label,
                    "LIST_COLUMN_LABEL": label,
                    "LIST_FILTER_LABEL": label,
                    "ERROR_MESSAGE": None,
                    "HELP_MESSAGE": None,
                }
            records.append(record)
        return records
