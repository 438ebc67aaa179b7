"""Name pools for synthetic customers. The guardrails also use FIRST_NAMES to catch a message that
names a customer other than its recipient."""

FIRST_NAMES: tuple[str, ...] = (
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "James",
    "Charlotte", "Lucas", "Isabella", "Mateo", "Ava", "Leo", "Luna", "Ethan", "Harper", "Henry",
    "Aria", "Jack", "Chloe", "Finn", "Nora", "Hugo", "Zoe", "Oscar", "Lea", "Felix",
    "Ines", "Arjun", "Priya", "Wei", "Mei", "Hiroshi", "Yuki", "Sofia", "Lukas", "Anna",
    "Mohammed", "Fatima", "Omar", "Aisha", "Diego", "Camila", "Kofi", "Amara", "Sven", "Freya",
    "Zoë", "Chloé", "José", "Björn", "Søren", "Małgorzata", "Ángel", "Renée", "Çağla", "Đorđe",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Garcia", "Martin", "Müller", "Schmidt", "Rossi", "Dubois", "Silva", "Kim",
    "Nguyen", "Tanaka", "Patel", "Kowalski", "Jensen", "Novak", "Costa", "Moreau", "Larsen", "Ali",
)
