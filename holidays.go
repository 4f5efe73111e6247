package quotehub

// Holidays and special sessions of the stock markets, pinned for 2026 and
// 2027. Outside these years a stock market's calendar knows weekends and
// regular hours only; add each new year's list here when the exchange
// publishes it (in December of the year before).

// krxHolidays are the days the Korea Exchange is closed on weekdays.
//
// 2026: the exchange's 2026 closure list as reported by the Korean press in
// December 2025 and January 2026 (New Year, Seollal 2/16–18, substitute
// holidays 3/2, 5/25, 8/17, 10/5, Labor Day 5/1, the local elections of
// 6/3, Chuseok 9/24–25, and the year-end closure 12/31).
// 2027: not yet published by KRX; derived from the Regulations on Holidays
// of Government Offices (관공서의 공휴일에 관한 규정) with its substitute-holiday
// rules (Seollal/Chuseok on a Sunday; national days, Children's Day,
// Buddha's Birthday and Christmas on a weekend), plus Labor Day and the
// year-end closure that the exchange's business rules add.
var krxHolidays = map[civil]string{
	{2026, 1, 1}:   "New Year's Day",
	{2026, 2, 16}:  "Seollal",
	{2026, 2, 17}:  "Seollal",
	{2026, 2, 18}:  "Seollal",
	{2026, 3, 2}:   "Independence Movement Day (substitute)",
	{2026, 5, 1}:   "Labor Day",
	{2026, 5, 5}:   "Children's Day",
	{2026, 5, 25}:  "Buddha's Birthday (substitute)",
	{2026, 6, 3}:   "Local elections",
	{2026, 8, 17}:  "Liberation Day (substitute)",
	{2026, 9, 24}:  "Chuseok",
	{2026, 9, 25}:  "Chuseok",
	{2026, 10, 5}:  "National Foundation Day (substitute)",
	{2026, 10, 9}:  "Hangul Day",
	{2026, 12, 25}: "Christmas",
	{2026, 12, 31}: "Year-end closure",

	{2027, 1, 1}:   "New Year's Day",
	{2027, 2, 8}:   "Seollal",
	{2027, 2, 9}:   "Seollal (substitute)",
	{2027, 3, 1}:   "Independence Movement Day",
	{2027, 5, 5}:   "Children's Day",
	{2027, 5, 13}:  "Buddha's Birthday",
	{2027, 8, 16}:  "Liberation Day (substitute)",
	{2027, 9, 14}:  "Chuseok",
	{2027, 9, 15}:  "Chuseok",
	{2027, 9, 16}:  "Chuseok",
	{2027, 10, 4}:  "National Foundation Day (substitute)",
	{2027, 10, 11}: "Hangul Day (substitute)",
	{2027, 12, 27}: "Christmas (substitute)",
	{2027, 12, 31}: "Year-end closure",
}

// krxSpecial are KRX days with other hours than 09:00–15:30: the first
// trading day of each year opens at 10:00 (the opening ceremony), and the
// day of the college entrance exam trades 10:00–16:30. Source: the
// exchange's notices as reported with the 2026 closure list; the exam day
// of 2027 (November) is set by the Ministry of Education in the spring and
// is added when known.
var krxSpecial = map[civil]hours{
	{2026, 1, 2}:   {open: 10 * 60, close: 15*60 + 30},
	{2026, 11, 19}: {open: 10 * 60, close: 16*60 + 30},
	{2027, 1, 4}:   {open: 10 * 60, close: 15*60 + 30},
}

// nyseHolidays are the days NYSE (and Nasdaq, which keeps the same
// holidays) is closed on weekdays. Source: NYSE Group, "NYSE Group
// Announces 2025, 2026 and 2027 Holiday and Early Closings Calendar"
// (press release, 8 November 2024).
var nyseHolidays = map[civil]string{
	{2026, 1, 1}:   "New Year's Day",
	{2026, 1, 19}:  "Martin Luther King, Jr. Day",
	{2026, 2, 16}:  "Washington's Birthday",
	{2026, 4, 3}:   "Good Friday",
	{2026, 5, 25}:  "Memorial Day",
	{2026, 6, 19}:  "Juneteenth",
	{2026, 7, 3}:   "Independence Day (observed)",
	{2026, 9, 7}:   "Labor Day",
	{2026, 11, 26}: "Thanksgiving Day",
	{2026, 12, 25}: "Christmas Day",

	{2027, 1, 1}:   "New Year's Day",
	{2027, 1, 18}:  "Martin Luther King, Jr. Day",
	{2027, 2, 15}:  "Washington's Birthday",
	{2027, 3, 26}:  "Good Friday",
	{2027, 5, 31}:  "Memorial Day",
	{2027, 6, 18}:  "Juneteenth (observed)",
	{2027, 7, 5}:   "Independence Day (observed)",
	{2027, 9, 6}:   "Labor Day",
	{2027, 11, 25}: "Thanksgiving Day",
	{2027, 12, 24}: "Christmas Day (observed)",
}

// nyseSpecial are NYSE's early closes at 13:00 Eastern. Source: the same
// press release (the day after Thanksgiving of both years, and Christmas
// Eve 2026; in 2027 Christmas is observed on the 24th).
var nyseSpecial = map[civil]hours{
	{2026, 11, 27}: {open: 9*60 + 30, close: 13 * 60},
	{2026, 12, 24}: {open: 9*60 + 30, close: 13 * 60},
	{2027, 11, 26}: {open: 9*60 + 30, close: 13 * 60},
}
