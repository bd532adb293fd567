package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// auditRecordType is one value of Microsoft 365's AuditRecordType, the
// enumeration Search-UnifiedAuditLog's -RecordType takes.
type auditRecordType struct {
	name string
	// value is the number the common schema's RecordType field holds,
	// where Microsoft documents one; 0 where it does not.
	value record.RecordType
}

// auditRecordTypes are the values of AuditRecordType as Microsoft names
// them: those of the Office 365 Management Activity API schema's
// AuditLogRecordType, with their numbers, then those only Microsoft
// Graph's auditLogRecordType names and the ones the cmdlet's syntax once
// listed. -RecordType takes a name (in any case) or a documented number,
// as PowerShell converts either to the enumeration; Lockbox writes two of
// them (record.RecordType.Known), and a search by any other finds
// nothing, as it would in a tenant where that service wrote nothing.
var auditRecordTypes = []auditRecordType{
	{"ExchangeAdmin", 1}, {"ExchangeItem", 2}, {"ExchangeItemGroup", 3}, {"SharePoint", 4},
	{"SyntheticProbe", 5}, {"SharePointFileOperation", 6}, {"OneDrive", 7},
	{"AzureActiveDirectory", 8}, {"AzureActiveDirectoryAccountLogon", 9},
	{"DataCenterSecurityCmdlet", 10}, {"ComplianceDLPSharePoint", 11}, {"Sway", 12},
	{"ComplianceDLPExchange", 13}, {"SharePointSharingOperation", 14},
	{"AzureActiveDirectoryStsLogon", 15}, {"SkypeForBusinessPSTNUsage", 16},
	{"SkypeForBusinessUsersBlocked", 17}, {"SecurityComplianceCenterEOPCmdlet", 18},
	{"ExchangeAggregatedOperation", 19}, {"PowerBIAudit", 20}, {"CRM", 21}, {"Yammer", 22},
	{"SkypeForBusinessCmdlets", 23}, {"Discovery", 24}, {"MicrosoftTeams", 25},
	{"ThreatIntelligence", 28}, {"MailSubmission", 29}, {"MicrosoftFlow", 30}, {"AeD", 31},
	{"MicrosoftStream", 32}, {"ComplianceDLPSharePointClassification", 33}, {"ThreatFinder", 34},
	{"Project", 35}, {"SharePointListOperation", 36}, {"SharePointCommentOperation", 37},
	{"DataGovernance", 38}, {"Kaizala", 39}, {"SecurityComplianceAlerts", 40},
	{"ThreatIntelligenceUrl", 41}, {"SecurityComplianceInsights", 42}, {"MIPLabel", 43},
	{"WorkplaceAnalytics", 44}, {"PowerAppsApp", 45}, {"PowerAppsPlan", 46},
	{"ThreatIntelligenceAtpContent", 47}, {"LabelContentExplorer", 48}, {"TeamsHealthcare", 49},
	{"ExchangeItemAggregated", 50}, {"HygieneEvent", 51}, {"DataInsightsRestApiAudit", 52},
	{"InformationBarrierPolicyApplication", 53}, {"SharePointListItemOperation", 54},
	{"SharePointContentTypeOperation", 55}, {"SharePointFieldOperation", 56},
	{"MicrosoftTeamsAdmin", 57}, {"HRSignal", 58}, {"MicrosoftTeamsDevice", 59},
	{"MicrosoftTeamsAnalytics", 60}, {"InformationWorkerProtection", 61}, {"Campaign", 62},
	{"DLPEndpoint", 63}, {"AirInvestigation", 64}, {"Quarantine", 65}, {"MicrosoftForms", 66},
	{"ApplicationAudit", 67}, {"ComplianceSupervisionExchange", 68},
	{"CustomerKeyServiceEncryption", 69}, {"OfficeNative", 70}, {"MipAutoLabelSharePointItem", 71},
	{"MipAutoLabelSharePointPolicyLocation", 72}, {"MicrosoftTeamsShifts", 73},
	{"MipAutoLabelExchangeItem", 75}, {"CortanaBriefing", 76}, {"Search", 77}, {"WDATPAlerts", 78},
	{"MDATPAudit", 81}, {"SensitivityLabelPolicyMatch", 82}, {"SensitivityLabelAction", 83},
	{"SensitivityLabeledFileAction", 84}, {"AttackSim", 85}, {"AirManualInvestigation", 86},
	{"SecurityComplianceRBAC", 87}, {"UserTraining", 88}, {"AirAdminActionInvestigation", 89},
	{"MSTIC", 90}, {"PhysicalBadgingSignal", 91}, {"AipDiscover", 93},
	{"AipSensitivityLabelAction", 94}, {"AipProtectionAction", 95}, {"AipFileDeleted", 96},
	{"AipHeartBeat", 97}, {"MCASAlerts", 98}, {"OnPremisesFileShareScannerDlp", 99},
	{"OnPremisesSharePointScannerDlp", 100}, {"ExchangeSearch", 101}, {"SharePointSearch", 102},
	{"PrivacyInsights", 103}, {"MyAnalyticsSettings", 105}, {"SecurityComplianceUserChange", 106},
	{"ComplianceDLPExchangeClassification", 107}, {"MipExactDataMatch", 109},
	{"MS365DCustomDetection", 113}, {"OfficeScriptsRunAction", 131}, {"CoreReportingSettings", 147},
	{"ComplianceConnector", 148}, {"OMEPortal", 154}, {"DataShareOperation", 174},
	{"EduDataLakeDownloadOperation", 181}, {"MicrosoftGraphDataConnectOperation", 183},
	{"PowerPagesSite", 186}, {"PlannerPlan", 188}, {"PlannerCopyPlan", 189}, {"PlannerTask", 190},
	{"PlannerRoster", 191}, {"PlannerPlanList", 192}, {"PlannerTaskList", 193},
	{"PlannerTenantSettings", 194}, {"ProjectForTheWebProject", 195}, {"ProjectForTheWebTask", 196},
	{"ProjectForTheWebRoadmap", 197}, {"ProjectForTheWebRoadmapItem", 198},
	{"ProjectForTheWebProjectSettings", 199}, {"ProjectForTheWebRoadmapSettings", 200},
	{"VivaGoals", 216}, {"MicrosoftGraphDataConnectConsent", 217}, {"AttackSimAdmin", 218},
	{"TeamsUpdates", 230}, {"PlannerRosterSensitivityLabel", 231}, {"DefenderExpertsforXDRAdmin", 237},
	{"VfamCreatePolicy", 251}, {"VfamUpdatePolicy", 252}, {"VfamDeletePolicy", 253},
	{"CopilotInteraction", 261}, {"ProjectForTheWebAssignedToMeSettings", 287},

	// Named by Microsoft Graph's auditLogRecordType without a number.
	{"SecureScore", 0}, {"PowerPlatformAdminDlp", 0}, {"PowerPlatformAdminEnvironment", 0},
	{"TeamsEasyApprovals", 0}, {"PrivacyDataMinimization", 0}, {"LabelAnalyticsAggregate", 0},
	{"ComplianceDLPEndpoint", 0}, {"MSDEResponseActions", 0}, {"MSDEGeneralSettings", 0},
	{"MSDEIndicatorsSettings", 0}, {"MSDERolesSettings", 0}, {"MAPGAlerts", 0}, {"MAPGPolicy", 0},
	{"MAPGRemediation", 0}, {"PrivacyRemediationAction", 0}, {"PrivacyDigestEmail", 0},
	{"MipAutoLabelSimulationProgress", 0}, {"MipAutoLabelSimulationCompletion", 0},
	{"MipAutoLabelProgressFeedback", 0}, {"DlpSensitiveInformationType", 0},
	{"MipAutoLabelSimulationStatistics", 0}, {"LargeContentMetadata", 0}, {"Microsoft365Group", 0},
	{"CDPMlInferencingResult", 0}, {"FilteringMailMetadata", 0}, {"CDPClassificationMailItem", 0},
	{"CDPClassificationDocument", 0}, {"FilteringPostMailDeliveryAction", 0},
	{"CDPUnifiedFeedback", 0}, {"TenantAllowBlockList", 0}, {"ConsumptionResource", 0},
	{"HealthcareSignal", 0}, {"DlpImportResult", 0}, {"CDPCompliancePolicyExecution", 0},
	{"MultiStageDisposition", 0}, {"PrivacyDataMatch", 0}, {"FilteringDocMetadata", 0},
	{"FilteringEmailFeatures", 0}, {"PowerBIDlp", 0}, {"FilteringUrlInfo", 0},
	{"FilteringAttachmentInfo", 0}, {"PowerPlatformLockboxResourceAccessRequest", 0},
	{"PowerPlatformLockboxResourceCommand", 0}, {"CDPPredictiveCodingLabel", 0},
	{"CDPCompliancePolicyUserFeedback", 0}, {"WebpageActivityEndpoint", 0},
	{"CMImprovementActionChange", 0}, {"FilteringUrlClick", 0}, {"MipLabelAnalyticsAuditRecord", 0},
	{"FilteringEntityEvent", 0}, {"FilteringRuleHits", 0}, {"FilteringMailSubmission", 0},
	{"LabelExplorer", 0}, {"MicrosoftManagedServicePlatform", 0}, {"PowerPlatformServiceActivity", 0},
	{"ScorePlatformGenericAuditRecord", 0}, {"FilteringTimeTravelDocMetadata", 0}, {"Alert", 0},
	{"AlertStatus", 0}, {"AlertIncident", 0}, {"IncidentStatus", 0}, {"Case", 0},
	{"CaseInvestigation", 0}, {"RecordsManagement", 0}, {"PrivacyRemediation", 0},
	{"CdpDlpSensitive", 0}, {"EHRConnector", 0}, {"FilteringMailGradingResult", 0},
	{"PublicFolder", 0}, {"PrivacyTenantAuditHistoryRecord", 0}, {"AipScannerDiscoverEvent", 0},
	{"M365ComplianceConnector", 0}, {"MicrosoftPurview", 0}, {"FilteringEmailContentFeatures", 0},
	{"PowerAppsResource", 0}, {"QuarantineMetadata", 0}, {"MicrosoftTodoAudit", 0},
	{"TimeTravelFilteringDocMetadata", 0}, {"TeamsQuarantineMetadata", 0},
	{"SharePointAppPermissionOperation", 0}, {"MicrosoftTeamsSensitivityLabelAction", 0},
	{"FilteringTeamsMetadata", 0}, {"FilteringTeamsUrlInfo", 0},
	{"FilteringTeamsPostDeliveryAction", 0}, {"MDCAssessments", 0},
	{"MDCRegulatoryComplianceStandards", 0}, {"MDCRegulatoryComplianceControls", 0},
	{"MDCRegulatoryComplianceAssessments", 0}, {"MDCSecurityConnectors", 0},
	{"MDADataSecuritySignal", 0}, {"FilteringRuntimeInfo", 0}, {"FilteringAtpDetonationInfo", 0},
	{"PrivacyPortal", 0}, {"ManagedTenants", 0}, {"UnifiedSimulationMatchedItem", 0},
	{"UnifiedSimulationSummary", 0}, {"UpdateQuarantineMetadata", 0}, {"MS365DSuppressionRule", 0},
	{"PurviewDataMapOperation", 0}, {"FilteringUrlPostClickAction", 0},
	{"IrmUserDefinedDetectionSignal", 0}, {"MS365DIncident", 0}, {"FilteringDelistingMetadata", 0},
	{"ComplianceDLPSharePointClassificationExtended", 0}, {"MicrosoftDefenderForIdentityAudit", 0},
	{"SupervisoryReviewDayXInsight", 0}, {"CDPEdgeBlockedMessage", 0}, {"HostedRpa", 0},
	{"CdpContentExplorerAggregateRecord", 0}, {"CDPHygieneAttachmentInfo", 0},
	{"CDPHygieneSummary", 0}, {"CDPPostMailDeliveryAction", 0}, {"CDPEmailFeatures", 0},
	{"CDPHygieneUrlInfo", 0}, {"CDPUrlClick", 0}, {"CDPPackageManagerHygieneEvent", 0},
	{"FilteringDocScan", 0}, {"TimeTravelFilteringDocScan", 0}, {"MAPGOnboard", 0}, {"M365DAAD", 0},
	{"CdpColdCrawlStatus", 0}, {"PowerPlatformAdministratorActivity", 0},
	{"Windows365CustomerLockbox", 0}, {"CdpResourceScopeChangeEvent", 0},
	{"ComplianceCCExchangeExecutionResult", 0}, {"CdpOcrCostEstimatorRecord", 0},
	{"CdpOcrBillingRecord", 0}, {"ComplianceDLPApplications", 0}, {"UAMOperation", 0},
	{"VivaLearning", 0}, {"VivaLearningAdmin", 0}, {"PurviewPolicyOperation", 0},
	{"PurviewMetadataPolicyOperation", 0}, {"PeopleAdminSettings", 0},
	{"CdpComplianceDLPExchangeClassification", 0}, {"CdpComplianceDLPSharePointClassification", 0},
	{"FilteringBulkSenderInsightData", 0}, {"FilteringBulkThresholdInsightData", 0},
	{"PrivacyOpenAccess", 0}, {"OWAAuth", 0}, {"ComplianceDLPApplicationsClassification", 0},
	{"SharePointESignature", 0}, {"Dynamics365BusinessCentral", 0}, {"MeshWorlds", 0},
	{"VivaPulseResponse", 0}, {"VivaPulseOrganizer", 0}, {"VivaPulseAdmin", 0},
	{"VivaPulseReport", 0}, {"AIAppInteraction", 0}, {"ComplianceDLMExchange", 0},
	{"ComplianceDLMSharePoint", 0}, {"CPSOperation", 0}, {"ComplianceDLPExchangeDiscovery", 0},
	{"PurviewMCRecommendation", 0},

	// Listed by the cmdlet's syntax in earlier versions of its documentation.
	{"EOPCmdlet", 0}, {"MicrosoftTeamsAddOns", 0}, {"MicrosoftTeamsSettingsOperation", 0},
}

// parseRecordType reads -RecordType as PowerShell converts a value to
// AuditRecordType: one name of the enumeration, in any case, or its
// number. It returns the RecordType records of that type carry (0 for a
// type Microsoft documents no number for, which no Lockbox record has)
// and the type's name. A value that is none of them is refused, as
// PowerShell refuses it before the cmdlet runs.
func parseRecordType(v string) (record.RecordType, string, error) {
	s := strings.Trim(strings.TrimSpace(v), `"'`)
	n, numErr := strconv.Atoi(s)
	for _, t := range auditRecordTypes {
		if strings.EqualFold(t.name, s) || numErr == nil && t.value != 0 && int(t.value) == n {
			return t.value, t.name, nil
		}
	}
	return 0, "", fmt.Errorf("-RecordType %q is not a record type: give one of Microsoft 365's AuditRecordType values; Lockbox writes %s (%d) and %s (%d)",
		v, recordTypeName(record.RecordTypeExchangeAdmin), record.RecordTypeExchangeAdmin,
		recordTypeName(record.RecordTypeDataCenterSecurityCmdlet), record.RecordTypeDataCenterSecurityCmdlet)
}

// recordTypeName is AuditRecordType's name of t, or its number.
func recordTypeName(t record.RecordType) string {
	for _, at := range auditRecordTypes {
		if at.value == t && t != 0 {
			return at.name
		}
	}
	return strconv.Itoa(int(t))
}
