-- iDent's dbo schema as PostgreSQL, for the sandbox. Names are SQL Server's, quoted, CamelCase.
-- Column lists: ../../../../../shared/fixtures/ident/vovarama1992_ident-amo/structure.json and
-- SOURCE_FACTS §1.3 (physical order kept). Tables whose full list is unknown carry the columns the
-- corroborating sources name plus the usual audit columns (marked "inferred").
-- Types: int ids; datetime → timestamp(3) without zone (local clinic time); money/decimal →
-- numeric(28,10); bit → boolean (read as bool through psqlODBC with BoolsAsChar=0); nvarchar → varchar/text.
-- No foreign keys: iDent's are not documented, and the generator keeps the references consistent.

CREATE SCHEMA IF NOT EXISTS dbo;
SET search_path = dbo;

-- SQL Server's rowversion: one counter per database, advanced by every insert and update of a
-- table that has a rowversion column.
CREATE SEQUENCE dbo."__RowVersion" AS bigint START 12850000;

CREATE FUNCTION dbo."__stamp_rowversion"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW."RowVersion" := nextval('dbo."__RowVersion"');
    RETURN NEW;
END
$$;

CREATE TABLE dbo."OwnCompanies" (  -- branches (филиалы); columns beyond ID, Name inferred
    "ID" int PRIMARY KEY,
    "Name" varchar(255) NOT NULL,
    "Archive" boolean NOT NULL DEFAULT false,
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."Persons" (  -- confirmed: ID, Surname, Name, Patronymic, Birthday (a string!), MobilePhone
    "ID" int PRIMARY KEY,
    "Surname" varchar(100),
    "Name" varchar(100),
    "Patronymic" varchar(100),
    "Birthday" varchar(20),
    "MobilePhone" varchar(50),
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."Staffs" (  -- PK ID_Persons = Persons.ID; Archive = dismissed
    "ID_Persons" int PRIMARY KEY,
    "Archive" boolean NOT NULL DEFAULT false,
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."ProfessionNames" (  -- ID_Roles: 7 administrator, 8 doctor, 9 director, 104 marketer
    "ID" int PRIMARY KEY,
    "NameProfession" varchar(255) NOT NULL,
    "ID_Roles" int NOT NULL,
    "Archive" boolean NOT NULL DEFAULT false
);

CREATE TABLE dbo."Items" (  -- a staff member's professions
    "ID" int PRIMARY KEY,
    "ID_Staffs" int NOT NULL,
    "ID_ProfessionNames" int NOT NULL
);

CREATE TABLE dbo."Armchairs" (  -- chairs/cabinets of a branch
    "ID" int PRIMARY KEY,
    "NameArmchair" varchar(255) NOT NULL,
    "ID_OwnCompanies" int,
    "Archive" boolean NOT NULL DEFAULT false
);

CREATE TABLE dbo."ReceptionCancelReasons" (  -- columns beyond ID inferred
    "ID" int PRIMARY KEY,
    "Name" varchar(255) NOT NULL,
    "Archive" boolean NOT NULL DEFAULT false
);

CREATE TABLE dbo."Patients" (  -- PK ID_Persons; no ID column. Physical order from structure.json
    "ID_Persons" int PRIMARY KEY,
    "FirstVisit" date,
    "MinStatus" int,
    "InitialBalance" numeric(28, 10),
    "InitialTreatmentSum" numeric(28, 10),
    "ParentSNP" varchar(255),
    "ID_Agents" int,
    "JobPlace" varchar(255),
    "Profession" varchar(255),
    "CardNumber" varchar(50),
    "Comment" text,
    "AdditionalComment" text,
    "ID_InfoSources" int,
    "ID_StaffInfoSources" int,
    "ID_ArchivingReasons" int,
    "ID_Staffs" int,
    "ConformToSending" boolean,
    "SMSRejection" boolean,
    "BillIsNecessary" boolean,
    "EGISZRejection" boolean,
    "PatientToothInfo" text,
    "FirstConsultation" timestamp(3),
    "FirstTreat" timestamp(3),
    "ExternalUID" varchar(100),
    "ID_StaffsChanged" int,
    "DateTimeChanged" timestamp(3),
    "PatientNumber" varchar(50),
    "Status" int,
    "ID_OldProgram" int
);

CREATE TABLE dbo."Receptions" (  -- visits; no Status column: status follows from the timestamps
    "ID" int PRIMARY KEY,
    "ID_Patients" int NOT NULL,
    "ID_StaffsReceptionAdded" int,
    "ReceptionAdded" timestamp(3),
    "Comment" text,
    "ID_DeliveryNotifications" int,
    "DateTimeNotified" timestamp(3),
    "IsNotified" boolean,
    "PatientAppeared" timestamp(3),
    "ReceptionStarted" timestamp(3),
    "ReceptionEnded" timestamp(3),
    "CheckIssued" timestamp(3),
    "PlanStart" timestamp(3),
    "PlanEnd" timestamp(3),
    "ID_Staffs" int,
    "ID_Armchairs" int,
    "NeedHandReminder" boolean,
    "ID_ReceptionCancelReasons" int,
    "CancelReasonComment" text,
    "ID_StaffsReceptionCanceled" int,
    "ReceptionCanceled" timestamp(3),
    "ID_ReceptionsTransferFrom" int,
    "ID_ExternalProviders" int,
    "ExternalProviderComment" text,
    "ID_AppointmentSources" int,
    "ExternalUID" varchar(100),
    "RowVersion" bigint NOT NULL DEFAULT 0,  -- SQL Server rowversion; set by the trigger below
    "ID_StaffsAdded" int,
    "DateTimeAdded" timestamp(3),
    "ID_StaffsChanged" int,
    "DateTimeChanged" timestamp(3)
);
CREATE TRIGGER "Receptions_RowVersion" BEFORE INSERT OR UPDATE ON dbo."Receptions"
    FOR EACH ROW EXECUTE FUNCTION dbo."__stamp_rowversion"();

CREATE TABLE dbo."ServiceItems" (  -- price-list entries; columns beyond ID, Name inferred
    "ID" int PRIMARY KEY,
    "Name" varchar(500) NOT NULL,
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."ServiceItemPrices" (  -- OrderServiceRelation.ID_ServicePrices → ID
    "ID" int PRIMARY KEY,
    "ID_ServiceItems" int NOT NULL,
    "Price" numeric(28, 10) NOT NULL,
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."TreatmentPlanStages" (
    "ID" int PRIMARY KEY,
    "Name" varchar(255) NOT NULL,
    "Order" int
);

CREATE TABLE dbo."TreatmentPlanElements" (  -- a catalogue tree, not per-patient rows
    "ID" int PRIMARY KEY,
    "ID_TreatmentPlanElementsParent" int,
    "Name" varchar(500),
    "IsArchive" boolean,
    "ID_ServiceTargetTypes" int,
    "TreatmentStage" int,
    "TreatmentCode" varchar(50),
    "Order" int,
    "ID_ServiceCategories" int,
    "Price" numeric(28, 10),
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."TreatmentPlans" (
    "ID" int PRIMARY KEY,
    "ID_StaffsCreated" int,
    "DateTimeCreated" timestamp(3),
    "ID_Patients" int NOT NULL,
    "Name" varchar(500),
    "ID_Staffs" int,
    "ActualFrom" timestamp(3),
    "DateTimePriceFix" timestamp(3),
    "UseOrderDiscounts" boolean,
    "RoundLength" int,
    "IsActive" boolean,
    "ActualTo" timestamp(3),
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."TreatmentPlanElementRelations" (  -- plan line items
    "ID" int PRIMARY KEY,
    "ID_TreatmentPlans" int NOT NULL,
    "ID_TreatmentPlanStages" int,
    "ID_TreatmentPlanElements" int,
    "ID_ServicePrices" int,
    "ID_ServiceCodes" int,
    "ID_ServiceGroupCodes" int,
    "TeethLong" bigint,
    "DiscountSum" numeric(28, 10),
    "ID_Companies" int,
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."Orders" (  -- a visit's bill
    "ID" int PRIMARY KEY,
    "DateTimeOrder" timestamp(3),
    "ID_OwnCompanies" int,
    "ID_Receptions" int,
    "ID_Patients" int,
    "ID_Staffs" int,
    "ID_StaffsAssistant" int,
    "DateTimeBillFormed" timestamp(3),
    "ID_StaffsGaveDiscount" int,
    "ID_DiscountGroupMembers" int,
    "DiscountGroupMemberNumber" varchar(50),
    "ID_TherapeuticSanations" int,
    "ID_ProstheticSanations" int,
    "ID_OrthodonticSanations" int,
    "ID_ParodontolalSanations" int,
    "ID_SurgicalSanations" int,
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3),
    "DateTimeBill" timestamp(3),
    "IsBillFormed" boolean,
    "RoundLength" int,
    "ID_ReceptionsForUnique" int
);

CREATE TABLE dbo."OrderServiceRelation" (  -- bill lines: CountService × ServiceItemPrices.Price − DiscountSum
    "ID" int PRIMARY KEY,
    "ID_Orders" int NOT NULL,
    "ID_TreatmentPlans" int,
    "ID_TreatmentPlanElementRelations" int,
    "ID_ServicePrices" int,
    "ID_ServiceCodes" int,
    "ID_ServiceGroupCodes" int,
    "CountService" int,
    "TeethLong" bigint,
    "ID_SanationTypes" int,
    "DiscountSum" numeric(28, 10),
    "DeferredDiscountSum" numeric(28, 10),
    "ID_StaffsWarranty" int,
    "IsWarranty" boolean,
    "ID_Companies" int,
    "CompanyPaymentState" int,
    "DateTimeCompanyPaid" timestamp(3),
    "ID_Returns" int,
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3)
);

CREATE TABLE dbo."PaymentsIn" (
    "ID" int PRIMARY KEY,
    "DateTimePayment" timestamp(3),
    "ID_OwnCompanies" int,
    "ID_Patients" int,
    "ID_CashDescs" int,
    "ID_ServiceGroups" int,
    "ID_Staffs" int,
    "Payment" numeric(28, 10),
    "ID_StaffsAdded" int, "DateTimeAdded" timestamp(3), "ID_StaffsChanged" int, "DateTimeChanged" timestamp(3),
    "DatePayment" date
);
