"""Deterministic, realistic seed data for the sandbox CRMs.

:func:`generate_org` makes people, owners and deals in a CRM-neutral shape; each emulator maps
them onto its own field names. The mix is tuned so every funnel status and miss type of
DOMAIN.md occurs: served and unserved countries, tiny to huge companies, personal and student
email domains, competitors' employees, engaged and silent contacts, and won, open and lost deals
whose loss reasons come in many phrasings (soft and hard).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crmsync.sandbox.history import History, person_history

#: Seeded stamps are moved back by up to this many seconds (a second-level draw): real activity
#: does not happen on the hour, and stamps that all sat on whole hours made two runs either side
#: of ``HH:00`` decide a "within N days" rule differently for many contacts at once (#13.10).
JITTER_S = 3600

SERVED_COUNTRIES = (
    "US", "CA", "GB", "IE", "DE", "FR", "NL", "BE", "SE", "DK", "NO", "FI", "ES", "IT", "CH", "AT",
)
UNSERVED_COUNTRIES = ("BR", "IN", "JP", "AU", "ZA", "MX", "SG", "AE", "CN", "NG")
INDUSTRIES = (
    "Software", "Financial Services", "Manufacturing", "Healthcare", "Retail", "Logistics",
    "Media", "Telecommunications", "Energy", "Professional Services", "Insurance", "Real Estate",
)
EXCLUDED_INDUSTRIES = ("Education", "Government")
FIRST_NAMES = (
    "Ana", "Ben", "Chloé", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Jonas", "Kemal",
    "Lena", "Marta", "Noah", "Olga", "Pierre", "Quinn", "Rosa", "Sven", "Tomás", "Uma", "Vera",
    "Wiebke", "Xavier", "Yara", "Zoë", "Björn", "Siobhán", "Łukasz", "Mette",
)
LAST_NAMES = (
    "Andersen", "Berg", "Costa", "Dubois", "Evans", "Fischer", "García", "Hughes", "Ivanova",
    "Jansen", "Kowalski", "Larsen", "Müller", "Nielsen", "O'Brien", "Peeters", "Quist", "Rossi",
    "Schmidt", "Tanaka", "Ulrich", "Virtanen", "Weber", "Young", "Zimmermann", "Ní Bhriain",
)
COMPANY_WORDS = (
    "Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
    "Soylent", "Cyberdyne", "Tyrell", "Wonka", "Aperture", "Massive", "Gringotts", "Oscorp",
    "Pied Piper", "Dunder", "Sterling", "Bluth", "Prestige", "Monarch", "Vehement", "Kraken",
)
COMPANY_SUFFIXES = ("GmbH", "Ltd", "Inc.", "AB", "BV", "SAS", "AG", "Oy", "A/S", "S.p.A.", "LLC")
DECISION_TITLES = (
    "CEO", "CTO", "Chief Revenue Officer", "VP Sales", "VP of Marketing", "Head of Operations",
    "Director of IT", "Founder", "Co-Founder & Owner", "President", "Sales Director",
)
OTHER_TITLES = (
    "Sales Manager", "Marketing Specialist", "Account Executive", "Software Engineer",
    "Operations Analyst", "Office Manager", "Consultant", "Product Manager", "Intern",
    "Business Development Representative",
)
STUDENT_TITLES = ("Student", "MSc student", "PhD Candidate")
PERSONAL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com")
STUDENT_DOMAINS = ("student.tu-berlin.de", "ox.ac.uk", "mit.edu")
COMPETITOR_DOMAINS = ("rivalcrm.io", "pipelinepro.com")
COMPETITORS = ("RivalCRM", "PipelinePro", "SalesHero", "an in-house tool")
SOFT_LOSS_REASONS = (
    "Budget", "budget cut", "No budget this year", "Price too high", "Timing",
    "Postponed to next quarter", "revisit next year", "No decision", "Went dark",
    "unresponsive after demo", "Needs more time", "Not sure of value", "Unsure about ROI",
)
HARD_LOSS_REASONS = (
    "Went with competitor", "Chose another solution", "Lost to RivalCRM",
    "No longer needed", "Project cancelled", "Built in-house", "Out of business",
    "Selected PipelinePro",
)
ODD_LOSS_REASONS = ("Other", "see notes", "")
OPEN_STAGES = ("qualification", "discovery", "proposal", "negotiation")
LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead")
LEAD_STATUSES = ("NEW", "OPEN", "IN_PROGRESS", "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING")


@dataclass
class Owner:
    """A sales rep who owns contacts and receives tasks."""

    index: int
    first_name: str
    last_name: str
    email: str


@dataclass
class Deal:
    """A deal / opportunity attached to one person.

    Attributes:
        outcome: ``open``, ``won`` or ``lost``.
        stage: Open stage name (``qualification``...), or ``closedwon``/``closedlost``.
        loss_reason: Free-text reason recorded on a lost deal (many phrasings, sometimes blank).
        competitor: Competitor recorded on a lost deal, when one was.
    """

    index: int
    name: str
    outcome: str
    stage: str
    amount: float
    created_at: datetime
    close_date: datetime
    loss_reason: str | None = None
    competitor: str | None = None


@dataclass
class Person:
    """A contact in CRM-neutral form; emulators map these attributes to their own fields.

    ``is_lead`` says whether a Salesforce org keeps the person as a Lead (else a Contact with an
    Account); HubSpot has contacts only.
    """

    index: int
    first_name: str
    last_name: str
    email: str
    title: str | None
    company: str | None
    country: str | None
    industry: str | None
    employees: int | None
    annual_revenue: float | None
    created_at: datetime
    modified_at: datetime
    last_activity_at: datetime | None
    last_contacted_at: datetime | None
    form_submissions: int
    webinars_attended: int
    content_downloads: int
    page_views: int
    pricing_page_views: int
    chat_conversations: int
    trial_signup: bool
    demo_requested: bool
    case_study_requested: bool
    inbound_from_decision_maker: bool
    budget_confirmed: bool | None
    decision_maker: bool | None
    not_a_fit: bool
    lifecycle_stage: str
    lead_status: str | None
    owner_index: int
    is_lead: bool
    deals: list[Deal] = field(default_factory=list)
    #: Index into :attr:`Org.companies` of the person's employer, None without one (personal
    #: and student addresses).
    company_index: int | None = None
    #: Recorded field history (changes after a closed deal; see :mod:`crmsync.sandbox.history`).
    history: History = field(default_factory=History)


@dataclass
class Company:
    """An employer several people may share, keyed by its email domain.

    Its firmographics start from the first person seen at the domain; where that person's own
    field is empty the company still has a value (as in real portals, where company records are
    enriched while contacts keep what a form collected), so reading the company fills gaps.
    """

    index: int
    name: str
    domain: str
    industry: str | None
    employees: int | None
    annual_revenue: float | None
    country: str | None
    created_at: datetime


@dataclass
class Org:
    """Everything a seeded CRM starts with."""

    owners: list[Owner]
    people: list[Person]
    anchor: datetime
    companies: list[Company] = field(default_factory=list)


def generate_org(contacts: int, seed: int, anchor: datetime, owners: int = 8) -> Org:
    """Return a deterministic org of ``contacts`` people for ``seed``.

    Args:
        contacts: Number of people to generate.
        seed: Random seed; the same seed and anchor always give the same org.
        anchor: "Now" for the generated history (dates fall in the two years before it).
        owners: Number of sales reps.
    """
    rng = random.Random(seed)
    reps = [
        Owner(i, rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES),
              f"rep{i + 1}@crmsync-demo.example")
        for i in range(owners)
    ]
    people = [_person(rng, i, anchor, owners, _jitter(seed, i)) for i in range(contacts)]
    # Ties on the change timestamp happen in real orgs (bulk imports); make some on purpose.
    for i in range(0, contacts - 1, 97):
        people[i + 1].modified_at = people[i].modified_at
    companies = _companies(seed, people)
    for person in people:  # drawn last, from generators of their own: no value above moves
        person.history = person_history(seed, person, anchor)
    return Org(owners=reps, people=people, anchor=anchor, companies=companies)


def _companies(seed: int, people: list[Person]) -> list[Company]:
    """Return one company per employer domain and point each person at theirs.

    Draws come from a per-domain generator apart from the main one (like :func:`_jitter`), so
    adding companies changed no person's values; the same seed gives the same companies.
    """
    companies: list[Company] = []
    by_domain: dict[str, Company] = {}
    for person in people:
        domain = person.email.rsplit("@", 1)[-1]
        if domain in PERSONAL_DOMAINS or domain in STUDENT_DOMAINS:
            continue
        company = by_domain.get(domain)
        if company is None:
            rng = random.Random(f"crmsync-company:{seed}:{domain}")
            slug = domain.split(".")[0].rstrip("0123456789") or "company"
            name = person.company or f"{slug.capitalize()} {rng.choice(COMPANY_SUFFIXES)}"
            industry = person.industry or rng.choice(INDUSTRIES)
            employees = person.employees or rng.randint(10, 5000)
            revenue = person.annual_revenue or round(employees * rng.uniform(60e3, 250e3), -3)
            company = Company(
                index=len(companies),
                name=name,
                domain=domain,
                industry=industry,
                employees=employees,
                annual_revenue=revenue,
                country=person.country or rng.choice(SERVED_COUNTRIES),
                created_at=person.created_at - timedelta(days=rng.randint(0, 30)),
            )
            companies.append(company)
            by_domain[domain] = company
        person.company_index = company.index
    return companies


def _jitter(seed: int, index: int) -> random.Random:
    """A per-person generator for sub-hour offsets, apart from the main one.

    Kept apart so that adding the jitter changed no other seeded value (every archetype, count
    and choice of a seed is what it was); seeded from (seed, index), so it is deterministic.
    """
    return random.Random(f"crmsync-jitter:{seed}:{index}")


def _person(
    rng: random.Random, index: int, anchor: datetime, owners: int, jitter: random.Random
) -> Person:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    archetype = rng.choices(
        ("fit", "small", "huge", "tiny", "unserved", "excluded", "personal", "student",
         "competitor", "unknown"),
        weights=(46, 9, 4, 5, 8, 5, 7, 3, 2, 11),
    )[0]
    company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"
    slug = "".join(ch for ch in company.split()[0].lower() if ch.isalnum()) or "company"
    domain = f"{slug}{index % 50}.example.com"
    country: str | None = rng.choice(SERVED_COUNTRIES)
    industry: str | None = rng.choice(INDUSTRIES)
    employees: int | None = rng.randint(50, 5000)
    title: str | None = rng.choice(DECISION_TITLES if rng.random() < 0.45 else OTHER_TITLES)
    if archetype == "small":
        employees = rng.randint(10, 49)
    elif archetype == "huge":
        employees = rng.randint(5001, 120000)
    elif archetype == "tiny":
        employees = rng.randint(1, 9)
    elif archetype == "unserved":
        country = rng.choice(UNSERVED_COUNTRIES)
    elif archetype == "excluded":
        industry = rng.choice(EXCLUDED_INDUSTRIES)
    elif archetype == "personal":
        domain = rng.choice(PERSONAL_DOMAINS)
    elif archetype == "student":
        domain = rng.choice(STUDENT_DOMAINS)
        title = rng.choice(STUDENT_TITLES)
    elif archetype == "competitor":
        domain = rng.choice(COMPETITOR_DOMAINS)
    elif archetype == "unknown":
        # Sparse records: what a form fill with three fields looks like. Unknown never
        # disqualifies on its own.
        country = rng.choice((None, None, rng.choice(SERVED_COUNTRIES)))
        industry = None if rng.random() < 0.7 else industry
        employees = None if rng.random() < 0.7 else employees
        title = None if rng.random() < 0.5 else title
    local = f"{_ascii(first)}.{_ascii(last)}{index}".lower()
    created = anchor - timedelta(days=rng.randint(3, 720), minutes=rng.randint(0, 1439),
                                 seconds=jitter.randrange(60))
    engaged = rng.random() < 0.6
    hot = engaged and rng.random() < 0.35
    last_activity = (
        anchor - timedelta(days=rng.randint(0, 40 if engaged else 400), hours=rng.randint(0, 23),
                           seconds=jitter.randrange(JITTER_S))
        if rng.random() < 0.9
        else None
    )
    if last_activity is not None and last_activity < created:
        last_activity = created + timedelta(hours=1, seconds=jitter.randrange(JITTER_S))
    person = Person(
        index=index,
        first_name=first,
        last_name=last,
        email=f"{local}@{domain}",
        title=title,
        company=None if archetype == "unknown" and rng.random() < 0.3 else company,
        country=country,
        industry=industry,
        employees=employees,
        annual_revenue=(None if employees is None
                        else round(employees * rng.uniform(60e3, 250e3), -3)),
        created_at=created,
        modified_at=created,
        last_activity_at=last_activity,
        last_contacted_at=(
            last_activity - timedelta(days=rng.randint(0, 20), seconds=jitter.randrange(JITTER_S))
            if last_activity is not None and rng.random() < 0.6
            else None
        ),
        form_submissions=rng.randint(1, 6) if engaged else rng.randint(0, 1),
        webinars_attended=rng.randint(0, 3) if engaged else 0,
        content_downloads=rng.randint(0, 5) if engaged else rng.randint(0, 1),
        page_views=rng.randint(5, 120) if engaged else rng.randint(0, 6),
        pricing_page_views=rng.randint(0, 8) if hot else rng.randint(0, 1),
        chat_conversations=rng.randint(0, 3) if hot else 0,
        trial_signup=hot and rng.random() < 0.4,
        demo_requested=hot and rng.random() < 0.4,
        case_study_requested=hot and rng.random() < 0.25,
        inbound_from_decision_maker=hot and rng.random() < 0.15,
        budget_confirmed=((rng.random() < 0.55) if engaged
                          else (None if rng.random() < 0.7 else False)),
        decision_maker=None if rng.random() < 0.6 else rng.random() < 0.5,
        not_a_fit=rng.random() < 0.02,
        lifecycle_stage=rng.choice(LIFECYCLE_STAGES),
        lead_status=rng.choice(LEAD_STATUSES) if rng.random() < 0.8 else None,
        owner_index=rng.randrange(owners),
        is_lead=rng.random() < 0.55,
    )
    person.deals = _deals(rng, person, anchor, jitter)
    touched = [d.close_date for d in person.deals if d.close_date <= anchor]
    if last_activity is not None:
        touched.append(last_activity)
    person.modified_at = max([created, *touched]).replace(microsecond=rng.randrange(0, 1000) * 1000)
    return person


def _deals(
    rng: random.Random, person: Person, anchor: datetime, jitter: random.Random
) -> list[Deal]:
    if person.is_lead or rng.random() > 0.45:
        return []
    deals: list[Deal] = []
    for n in range(rng.choice((1, 1, 1, 2))):
        outcome = rng.choices(("open", "won", "lost"), weights=(40, 20, 40))[0]
        created = person.created_at + timedelta(days=rng.randint(1, 60))
        close = created + timedelta(days=rng.randint(10, 120))
        if close > anchor:
            close = anchor - timedelta(days=rng.randint(0, 5), seconds=jitter.randrange(JITTER_S))
        reason = competitor = None
        if outcome == "lost":
            kind = rng.choices(("soft", "hard", "odd"), weights=(55, 35, 10))[0]
            pool = {"soft": SOFT_LOSS_REASONS, "hard": HARD_LOSS_REASONS, "odd": ODD_LOSS_REASONS}
            reason = rng.choice(pool[kind]) or None
            if kind == "hard" and rng.random() < 0.5:
                competitor = rng.choice(COMPETITORS)
        stage = {"won": "closedwon", "lost": "closedlost"}.get(outcome) or rng.choice(OPEN_STAGES)
        deals.append(
            Deal(
                index=person.index * 4 + n,
                name=(f"{person.company or 'New'} - "
                      f"{rng.choice(('Starter', 'Growth', 'Enterprise'))}"),
                outcome=outcome,
                stage=stage,
                amount=float(rng.choice((4800, 12000, 24000, 60000, 150000))),
                created_at=created,
                close_date=(close if outcome != "open"
                            else anchor + timedelta(days=rng.randint(5, 90))),
                loss_reason=reason,
                competitor=competitor,
            )
        )
    return deals


def _ascii(text: str) -> str:
    table = str.maketrans(
        {"é": "e", "ë": "e", "ö": "o", "ü": "u", "á": "a", "í": "i", "ó": "o", "ł": "l", "Ł": "L",
         "ø": "o", "å": "a", "ä": "a", "'": "", " ": ""}
    )
    return text.translate(table)
