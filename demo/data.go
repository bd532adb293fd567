package demo

import (
	"path"
	"time"
)

// tenantData is one tenant's data in one service; only the part of the
// service it belongs to is filled. Guarded by Service.mu.
type tenantData struct {
	mailboxes []*mailbox
	sites     []*site
	drives    []*drive
}

// Exchange.

type mailboxInfo struct {
	ID                   string    `json:"id"`
	DisplayName          string    `json:"display_name"`
	PrimarySMTPAddress   string    `json:"primary_smtp_address"`
	RecipientTypeDetails string    `json:"recipient_type_details"`
	Database             string    `json:"database"`
	ProhibitSendQuota    string    `json:"prohibit_send_quota"`
	WhenCreated          time.Time `json:"when_created"`
}

type mailbox struct {
	mailboxInfo
	messages []*message
	repairs  []repairRequest
}

type message struct {
	ID             string    `json:"id"`
	Folder         string    `json:"folder"`
	Subject        string    `json:"subject"`
	From           string    `json:"from"`
	To             []string  `json:"to"`
	ReceivedAt     time.Time `json:"received_at"`
	Size           int       `json:"size"`
	HasAttachments bool      `json:"has_attachments"`
	IsRead         bool      `json:"is_read"`
	BodyPreview    string    `json:"body_preview"`
}

type repairRequest struct {
	ID              string    `json:"id"`
	Mailbox         string    `json:"mailbox"`
	CorruptionTypes []string  `json:"corruption_types"`
	DetectOnly      bool      `json:"detect_only"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
	RequestedBy     string    `json:"requested_by"`
	LockboxRequest  string    `json:"lockbox_request_id"`
}

// folders are the folders Get-MailboxFolderStatistics reports, in order,
// with their folder types; counts are computed from the messages.
var folders = []struct{ name, kind string }{
	{"Inbox", "Inbox"},
	{"Sent Items", "SentItems"},
	{"Drafts", "Drafts"},
	{"Deleted Items", "DeletedItems"},
	{"Archive", "Archive"},
}

func (m *mailbox) findMessage(id string) int {
	for i, msg := range m.messages {
		if msg.ID == id {
			return i
		}
	}
	return -1
}

// SharePoint.

type siteInfo struct {
	ID                  string    `json:"id"`
	URL                 string    `json:"url"`
	Title               string    `json:"title"`
	Template            string    `json:"template"`
	Owner               string    `json:"owner"`
	StorageQuotaMB      int64     `json:"storage_quota_mb"`
	SharingCapability   string    `json:"sharing_capability"`
	LockState           string    `json:"lock_state"`
	LastContentModified time.Time `json:"last_content_modified"`
}

type site struct {
	siteInfo
	files []*file
}

type fileInfo struct {
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	ServerRelativeURL string    `json:"server_relative_url"`
	ContentType       string    `json:"content_type"`
	Modified          time.Time `json:"modified"`
	ModifiedBy        string    `json:"modified_by"`
}

type file struct {
	fileInfo
	content string
}

func (s *site) findFile(id string) int {
	for i, f := range s.files {
		if f.ID == id {
			return i
		}
	}
	return -1
}

// OneDrive.

type driveInfo struct {
	ID         string `json:"id"`
	Owner      string `json:"owner"`
	OwnerEmail string `json:"owner_email"`
	URL        string `json:"url"`
	QuotaBytes int64  `json:"quota_bytes"`
}

type drive struct {
	driveInfo
	items []*item
}

type itemInfo struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	MimeType string    `json:"mime_type"`
	Modified time.Time `json:"modified"`
}

type item struct {
	itemInfo
	content string
}

func (d *drive) findItem(id string) int {
	for i, it := range d.items {
		if it.ID == id {
			return i
		}
	}
	return -1
}

// Seed data. Ids use only lower-case letters, digits and "-", so they pass
// the proxy's canonical-path check unescaped.

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const tb = 1 << 40

var mimeTypes = map[string]string{
	".md":   "text/markdown",
	".txt":  "text/plain",
	".csv":  "text/csv",
	".json": "application/json",
}

func mimeOf(name string) string {
	if t, ok := mimeTypes[path.Ext(name)]; ok {
		return t
	}
	return "application/octet-stream"
}

// seed returns fresh demo data for service.
func seed(service string) map[string]*tenantData {
	out := map[string]*tenantData{"contoso": {}, "fabrikam": {}}
	switch service {
	case Exchange:
		out["contoso"].mailboxes = contosoMailboxes()
		out["fabrikam"].mailboxes = fabrikamMailboxes()
	case SharePoint:
		out["contoso"].sites = contosoSites()
		out["fabrikam"].sites = fabrikamSites()
	case OneDrive:
		out["contoso"].drives = contosoDrives()
		out["fabrikam"].drives = fabrikamDrives()
	}
	return out
}

func newMailbox(id, name, smtp, kind, db, created string, msgs ...*message) *mailbox {
	return &mailbox{
		mailboxInfo: mailboxInfo{
			ID:                   id,
			DisplayName:          name,
			PrimarySMTPAddress:   smtp,
			RecipientTypeDetails: kind,
			Database:             db,
			ProhibitSendQuota:    "99 GB (106,300,440,576 bytes)",
			WhenCreated:          at(created),
		},
		messages: msgs,
	}
}

func contosoMailboxes() []*mailbox {
	return []*mailbox{
		newMailbox("megan-bowen", "Megan Bowen", "megan.bowen@contoso.example", "UserMailbox", "EURPR04DG123-db081", "2023-02-14T09:12:00Z",
			&message{ID: "msg-1001", Folder: "Inbox", Subject: "Calendar invites not syncing to my phone", From: "megan.bowen@contoso.example", To: []string{"helpdesk@contoso.example"}, ReceivedAt: at("2026-05-11T07:42:00Z"), Size: 18342, IsRead: true, BodyPreview: "Since Friday, meetings I accept in Outlook don't show up on my phone. Other folders sync fine."},
			&message{ID: "msg-1002", Folder: "Inbox", Subject: "Q2 budget review: updated figures", From: "alex.wilber@contoso.example", To: []string{"megan.bowen@contoso.example"}, ReceivedAt: at("2026-05-11T08:14:00Z"), Size: 48213, HasAttachments: true, BodyPreview: "Hi Megan, attached are the revised numbers for the review on Thursday."},
			&message{ID: "msg-1003", Folder: "Inbox", Subject: "Team offsite: venue confirmed", From: "adele.vance@contoso.example", To: []string{"sales-team@contoso.example"}, ReceivedAt: at("2026-05-10T16:03:00Z"), Size: 9120, BodyPreview: "The offsite is booked for June 18-19 at the lakeside centre."},
			&message{ID: "msg-1004", Folder: "Sent Items", Subject: "RE: Calendar invites not syncing to my phone", From: "megan.bowen@contoso.example", To: []string{"helpdesk@contoso.example"}, ReceivedAt: at("2026-05-11T09:30:00Z"), Size: 21877, BodyPreview: "Restarting the phone did not help. Case number is 2605110040001234."},
			&message{ID: "msg-1005", Folder: "Drafts", Subject: "Offsite agenda (draft)", From: "megan.bowen@contoso.example", To: []string{"sales-team@contoso.example"}, ReceivedAt: at("2026-05-11T10:05:00Z"), Size: 4410, BodyPreview: "Day 1: pipeline review. Day 2: territory planning."},
			&message{ID: "msg-1006", Folder: "Deleted Items", Subject: "Your weekly digest", From: "no-reply@contoso.example", To: []string{"megan.bowen@contoso.example"}, ReceivedAt: at("2026-05-09T06:00:00Z"), Size: 31502, IsRead: true, BodyPreview: "Here is what happened in your groups this week."},
		),
		newMailbox("alex-wilber", "Alex Wilber", "alex.wilber@contoso.example", "UserMailbox", "EURPR04DG123-db081", "2023-02-14T09:15:00Z",
			&message{ID: "msg-2001", Folder: "Inbox", Subject: "Invoice INV-20931 from Northwind Traders", From: "billing@northwind.example", To: []string{"alex.wilber@contoso.example"}, ReceivedAt: at("2026-05-11T05:21:00Z"), Size: 65230, HasAttachments: true, BodyPreview: "Please find attached invoice INV-20931, due within 30 days."},
			&message{ID: "msg-2002", Folder: "Inbox", Subject: "RE: Q2 budget review: updated figures", From: "megan.bowen@contoso.example", To: []string{"alex.wilber@contoso.example"}, ReceivedAt: at("2026-05-11T08:40:00Z"), Size: 12001, IsRead: true, BodyPreview: "Thanks Alex, the travel line still looks high to me."},
			&message{ID: "msg-2003", Folder: "Sent Items", Subject: "Q2 budget review: updated figures", From: "alex.wilber@contoso.example", To: []string{"megan.bowen@contoso.example"}, ReceivedAt: at("2026-05-11T08:14:00Z"), Size: 48213, HasAttachments: true, BodyPreview: "Hi Megan, attached are the revised numbers for the review on Thursday."},
		),
		newMailbox("helpdesk", "Contoso Helpdesk", "helpdesk@contoso.example", "SharedMailbox", "EURPR04DG123-db092", "2022-11-02T13:40:00Z",
			&message{ID: "msg-3001", Folder: "Inbox", Subject: "Calendar invites not syncing to my phone", From: "megan.bowen@contoso.example", To: []string{"helpdesk@contoso.example"}, ReceivedAt: at("2026-05-11T07:42:00Z"), Size: 18342, IsRead: true, BodyPreview: "Since Friday, meetings I accept in Outlook don't show up on my phone."},
			&message{ID: "msg-3002", Folder: "Inbox", Subject: "Printer on floor 3 offline", From: "adele.vance@contoso.example", To: []string{"helpdesk@contoso.example"}, ReceivedAt: at("2026-05-11T09:02:00Z"), Size: 7730, BodyPreview: "The printer by the kitchen shows 'offline' again."},
		),
	}
}

func fabrikamMailboxes() []*mailbox {
	return []*mailbox{
		newMailbox("pradeep-gupta", "Pradeep Gupta", "pradeep.gupta@fabrikam.example", "UserMailbox", "NAMPR11DG045-db210", "2024-06-03T15:00:00Z",
			&message{ID: "msg-5001", Folder: "Inbox", Subject: "Mailbox full warning", From: "postmaster@fabrikam.example", To: []string{"pradeep.gupta@fabrikam.example"}, ReceivedAt: at("2026-05-10T12:00:00Z"), Size: 5120, BodyPreview: "Your mailbox is almost full. Some folders report sizes that look wrong."},
			&message{ID: "msg-5002", Folder: "Inbox", Subject: "Design review notes", From: "isaiah.langer@fabrikam.example", To: []string{"pradeep.gupta@fabrikam.example"}, ReceivedAt: at("2026-05-11T10:30:00Z"), Size: 27800, HasAttachments: true, BodyPreview: "Notes from today's review of the turbine housing, with the open actions."},
			&message{ID: "msg-5003", Folder: "Archive", Subject: "Supplier contract renewal 2025", From: "legal@fabrikam.example", To: []string{"pradeep.gupta@fabrikam.example"}, ReceivedAt: at("2025-11-20T14:10:00Z"), Size: 120344, HasAttachments: true, IsRead: true, BodyPreview: "The signed renewal is attached for your records."},
		),
		newMailbox("isaiah-langer", "Isaiah Langer", "isaiah.langer@fabrikam.example", "UserMailbox", "NAMPR11DG045-db210", "2024-06-03T15:02:00Z",
			&message{ID: "msg-6001", Folder: "Inbox", Subject: "Lab booking for next week", From: "lab-scheduler@fabrikam.example", To: []string{"isaiah.langer@fabrikam.example"}, ReceivedAt: at("2026-05-11T06:45:00Z"), Size: 6021, BodyPreview: "Your booking for test bench 2 on Tuesday is confirmed."},
			&message{ID: "msg-6002", Folder: "Sent Items", Subject: "Design review notes", From: "isaiah.langer@fabrikam.example", To: []string{"pradeep.gupta@fabrikam.example"}, ReceivedAt: at("2026-05-11T10:30:00Z"), Size: 27800, HasAttachments: true, BodyPreview: "Notes from today's review of the turbine housing, with the open actions."},
		),
	}
}

func newSite(id, tenant, title, template, owner, sharing string, quotaMB int64, files ...*file) *site {
	s := &site{
		siteInfo: siteInfo{
			ID:                id,
			URL:               "https://" + tenant + ".sharepoint.example/sites/" + id,
			Title:             title,
			Template:          template,
			Owner:             owner,
			StorageQuotaMB:    quotaMB,
			SharingCapability: sharing,
			LockState:         "Unlock",
		},
		files: files,
	}
	for _, f := range files {
		f.ServerRelativeURL = "/sites/" + id + "/Shared Documents/" + f.Name
		f.ContentType = mimeOf(f.Name)
		if f.Modified.After(s.LastContentModified) {
			s.LastContentModified = f.Modified
		}
	}
	return s
}

func newFile(id, name, modified, by, content string) *file {
	return &file{fileInfo: fileInfo{ID: id, Name: name, Modified: at(modified), ModifiedBy: by}, content: content}
}

func contosoSites() []*site {
	return []*site{
		newSite("support", "contoso", "Customer Support", "STS#3", "megan.bowen@contoso.example", "ExternalUserSharingOnly", 1048576,
			newFile("file-101", "escalation-runbook.md", "2026-04-28T11:20:00Z", "megan.bowen@contoso.example",
				"# Escalation runbook\n\n1. Confirm the case number and the affected users.\n2. Collect the client logs.\n3. Page the on-call engineer for severity A.\n"),
			newFile("file-102", "known-issues.csv", "2026-05-11T09:45:00Z", "adele.vance@contoso.example",
				"id,title,status\nKI-17,Calendar invites missing on mobile,investigating\nKI-16,Shared mailbox search slow,resolved\n"),
			newFile("file-103", "sla-2026.txt", "2026-01-05T08:00:00Z", "megan.bowen@contoso.example",
				"Severity A: response within 1 hour, 24x7.\nSeverity B: response within 4 business hours.\nSeverity C: next business day.\n"),
		),
		newSite("finance", "contoso", "Finance", "SITEPAGEPUBLISHING#0", "alex.wilber@contoso.example", "Disabled", 524288,
			newFile("file-201", "budget-2026-q2.csv", "2026-05-11T08:10:00Z", "alex.wilber@contoso.example",
				"line,planned,actual\ntravel,42000,51380\nsoftware,120000,118250\ntraining,15000,9800\n"),
			newFile("file-202", "expense-policy.md", "2025-12-01T10:00:00Z", "alex.wilber@contoso.example",
				"# Expense policy\n\nReceipts are required for every expense over 25 EUR.\n"),
		),
	}
}

func fabrikamSites() []*site {
	return []*site{
		newSite("engineering", "fabrikam", "Engineering", "STS#3", "pradeep.gupta@fabrikam.example", "ExistingExternalUserSharingOnly", 2097152,
			newFile("file-301", "turbine-housing-spec.md", "2026-05-11T10:25:00Z", "isaiah.langer@fabrikam.example",
				"# Turbine housing, rev C\n\nMaterial: 6061-T6 aluminium. Wall thickness 4 mm. Open action: thermal test.\n"),
			newFile("file-302", "test-results.json", "2026-05-08T17:00:00Z", "isaiah.langer@fabrikam.example",
				"{\"bench\": 2, \"runs\": 14, \"max_temp_c\": 87.5, \"passed\": true}\n"),
		),
		newSite("hr", "fabrikam", "Human Resources", "STS#3", "pradeep.gupta@fabrikam.example", "Disabled", 262144,
			newFile("file-401", "onboarding-checklist.md", "2026-03-15T09:00:00Z", "pradeep.gupta@fabrikam.example",
				"# Onboarding\n\n- Laptop and badge\n- Safety briefing\n- Buddy assigned\n"),
		),
	}
}

func newDrive(id, tenant, owner, email string, items ...*item) *drive {
	return &drive{
		driveInfo: driveInfo{
			ID:         id,
			Owner:      owner,
			OwnerEmail: email,
			URL:        "https://" + tenant + "-my.sharepoint.example/personal/" + id,
			QuotaBytes: tb,
		},
		items: items,
	}
}

func newItem(id, p, modified, content string) *item {
	return &item{itemInfo: itemInfo{ID: id, Name: path.Base(p), Path: p, MimeType: mimeOf(p), Modified: at(modified)}, content: content}
}

func contosoDrives() []*drive {
	return []*drive{
		newDrive("megan-bowen", "contoso", "Megan Bowen", "megan.bowen@contoso.example",
			newItem("item-1001", "/Documents/phone-sync-notes.txt", "2026-05-11T09:28:00Z",
				"Phone: iOS, Outlook app 4.24. Calendar stopped syncing Friday after the password change.\n"),
			newItem("item-1002", "/Documents/offsite-budget.csv", "2026-05-10T15:12:00Z",
				"item,cost\nvenue,6400\ncatering,2150\ntravel,3900\n"),
			newItem("item-1003", "/Desktop/todo.md", "2026-05-11T07:30:00Z",
				"- [ ] Send the offsite agenda\n- [x] Open a ticket about calendar sync\n"),
		),
		newDrive("alex-wilber", "contoso", "Alex Wilber", "alex.wilber@contoso.example",
			newItem("item-2001", "/Documents/budget-working-copy.csv", "2026-05-11T08:05:00Z",
				"line,planned,actual\ntravel,42000,51380\n"),
			newItem("item-2002", "/Documents/vendor-contacts.txt", "2026-02-02T10:00:00Z",
				"Northwind Traders: billing@northwind.example\n"),
		),
	}
}

func fabrikamDrives() []*drive {
	return []*drive{
		newDrive("pradeep-gupta", "fabrikam", "Pradeep Gupta", "pradeep.gupta@fabrikam.example",
			newItem("item-5001", "/Documents/review-actions.md", "2026-05-11T11:00:00Z",
				"# Actions from the design review\n\n- Thermal test on bench 2 (Isaiah)\n"),
			newItem("item-5002", "/Documents/mailbox-size-screenshot-notes.txt", "2026-05-10T12:05:00Z",
				"Outlook says 49.9 GB used, the portal says 12 GB.\n"),
		),
		newDrive("isaiah-langer", "fabrikam", "Isaiah Langer", "isaiah.langer@fabrikam.example",
			newItem("item-6001", "/Documents/bench-2-log.csv", "2026-05-08T17:02:00Z",
				"run,max_temp_c\n1,81.0\n2,87.5\n"),
		),
	}
}
