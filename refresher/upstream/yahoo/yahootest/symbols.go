package yahootest

import (
	"math"
	"strings"

	"quotehub"
)

// Symbol is one instrument the fake quotes.
type Symbol struct {
	// Symbol is Yahoo's ticker, e.g. "AAPL" or "005930.KS".
	Symbol string
	// Name is the company name, sent as longName (and, padded the way Yahoo
	// pads it, as shortName).
	Name string
	// Exchange is the quotehub exchange whose session hours drive the
	// trading periods: quotehub.ExchangeNYSE, ExchangeNASDAQ or ExchangeKRX.
	Exchange string
	// ExchangeName and FullExchangeName are Yahoo's codes, e.g. "NMS" and
	// "NasdaqGS", "NYQ" and "NYSE", "KSC" and "KSE", "KOE" and "KOSDAQ".
	ExchangeName     string
	FullExchangeName string
	// Currency is "USD" or "KRW".
	Currency string
	// Price is regularMarketPrice at the symbol's first request; later
	// requests move it a few ticks around this value.
	Price float64
	// PrevClose is the previous session's close: previousClose, and
	// chartPreviousClose for range=1d.
	PrevClose float64
	// ChartPreviousClose, when non-zero, is sent as chartPreviousClose for
	// range=1d instead of PrevClose, so a test can tell which field a
	// client used.
	ChartPreviousClose float64
	// Volume is regularMarketVolume at the first request; it grows with
	// every request.
	Volume float64
}

// tick is the price increment of s: a cent for dollars, the KRX price band
// for won.
func (s *Symbol) tick() float64 {
	if s.Currency != "KRW" {
		return 0.01
	}
	return krxTick(s.Price)
}

// krxTick is the KRX tick size of a price (bands in force since 2023).
func krxTick(p float64) float64 {
	switch {
	case p < 2000:
		return 1
	case p < 5000:
		return 5
	case p < 20000:
		return 10
	case p < 50000:
		return 50
	case p < 200000:
		return 100
	case p < 500000:
		return 500
	default:
		return 1000
	}
}

// roundTick rounds p to a whole number of ticks without leaving binary
// noise in the decimal form (201.45, not 201.45000000000002).
func roundTick(p, tick float64) float64 {
	if tick < 1 {
		scale := math.Round(1 / tick)
		return math.Round(p*scale) / scale
	}
	return math.Round(p/tick) * tick
}

// us and kr build table entries.
func us(sym, name, exch string, price, prev, vol float64) Symbol {
	s := Symbol{Symbol: sym, Name: name, Currency: "USD", Price: price, PrevClose: prev, Volume: vol}
	if exch == "NYQ" {
		s.Exchange, s.ExchangeName, s.FullExchangeName = quotehub.ExchangeNYSE, "NYQ", "NYSE"
	} else {
		s.Exchange, s.ExchangeName, s.FullExchangeName = quotehub.ExchangeNASDAQ, "NMS", "NasdaqGS"
	}
	return s
}

func kr(sym, name string, price, prev, vol float64) Symbol {
	s := Symbol{Symbol: sym, Name: name, Exchange: quotehub.ExchangeKRX, Currency: "KRW",
		Price: price, PrevClose: prev, Volume: vol, ExchangeName: "KSC", FullExchangeName: "KSE"}
	if strings.HasSuffix(sym, ".KQ") {
		s.ExchangeName, s.FullExchangeName = "KOE", "KOSDAQ"
	}
	return s
}

// DefaultSymbols returns the fake's default table: 35 US stocks (Nasdaq
// and NYSE, in dollars) and 27 Korean stocks (24 KOSPI .KS and 3 KOSDAQ
// .KQ, in won), with realistic prices on valid ticks. The slice is new on
// every call.
func DefaultSymbols() []Symbol {
	return []Symbol{
		us("AAPL", "Apple Inc.", "NMS", 201.45, 199.20, 48_211_300),
		us("MSFT", "Microsoft Corporation", "NMS", 478.87, 476.10, 17_032_400),
		us("NVDA", "NVIDIA Corporation", "NMS", 142.63, 141.22, 186_455_200),
		us("AMZN", "Amazon.com, Inc.", "NMS", 213.57, 212.10, 39_118_900),
		us("GOOGL", "Alphabet Inc.", "NMS", 176.77, 177.94, 31_002_100),
		us("GOOG", "Alphabet Inc.", "NMS", 178.60, 179.53, 22_458_700),
		us("META", "Meta Platforms, Inc.", "NMS", 694.06, 688.50, 10_245_800),
		us("TSLA", "Tesla, Inc.", "NMS", 326.43, 319.11, 98_614_300),
		us("AVGO", "Broadcom Inc.", "NMS", 249.34, 246.93, 21_774_500),
		us("JPM", "JPMorgan Chase & Co.", "NYQ", 267.25, 265.02, 8_416_900),
		us("V", "Visa Inc.", "NYQ", 355.63, 357.21, 6_120_400),
		us("MA", "Mastercard Incorporated", "NYQ", 569.10, 566.48, 2_844_700),
		us("UNH", "UnitedHealth Group Incorporated", "NYQ", 306.20, 311.79, 12_051_600),
		us("XOM", "Exxon Mobil Corporation", "NYQ", 110.05, 109.42, 14_367_200),
		us("JNJ", "Johnson & Johnson", "NYQ", 154.71, 155.30, 7_233_800),
		us("WMT", "Walmart Inc.", "NYQ", 96.32, 95.87, 15_980_100),
		us("PG", "The Procter & Gamble Company", "NYQ", 161.30, 160.76, 6_015_300),
		us("HD", "The Home Depot, Inc.", "NYQ", 366.12, 363.58, 3_402_500),
		us("KO", "The Coca-Cola Company", "NYQ", 71.12, 70.95, 12_880_600),
		us("PEP", "PepsiCo, Inc.", "NMS", 131.48, 132.05, 7_765_400),
		us("COST", "Costco Wholesale Corporation", "NMS", 1012.54, 1004.17, 1_946_300),
		us("NFLX", "Netflix, Inc.", "NMS", 1232.46, 1219.90, 3_118_200),
		us("AMD", "Advanced Micro Devices, Inc.", "NMS", 121.93, 118.50, 41_337_000),
		us("INTC", "Intel Corporation", "NMS", 20.62, 20.41, 63_905_800),
		us("CSCO", "Cisco Systems, Inc.", "NMS", 64.85, 64.40, 17_551_900),
		us("ORCL", "Oracle Corporation", "NYQ", 176.38, 174.02, 9_661_100),
		us("CRM", "Salesforce, Inc.", "NYQ", 267.01, 269.88, 5_723_600),
		us("ADBE", "Adobe Inc.", "NMS", 395.72, 392.10, 3_007_400),
		us("DIS", "The Walt Disney Company", "NYQ", 117.45, 116.83, 8_299_500),
		us("BAC", "Bank of America Corporation", "NYQ", 45.31, 45.02, 33_408_200),
		us("PFE", "Pfizer Inc.", "NYQ", 24.43, 24.61, 39_712_800),
		us("NKE", "NIKE, Inc.", "NYQ", 61.85, 60.99, 14_106_300),
		us("BRK-B", "Berkshire Hathaway Inc.", "NYQ", 486.00, 489.37, 4_128_900),
		us("IBM", "International Business Machines Corporation", "NYQ", 276.67, 272.84, 3_690_700),
		us("QCOM", "QUALCOMM Incorporated", "NMS", 159.52, 157.66, 8_553_100),

		kr("005930.KS", "Samsung Electronics Co., Ltd.", 59_800, 59_200, 12_345_678),
		kr("000660.KS", "SK hynix Inc.", 248_500, 245_000, 3_112_460),
		kr("373220.KS", "LG Energy Solution, Ltd.", 287_000, 290_500, 231_877),
		kr("207940.KS", "Samsung Biologics Co.,Ltd.", 1_015_000, 1_008_000, 61_402),
		kr("005380.KS", "Hyundai Motor Company", 199_600, 197_300, 648_221),
		kr("000270.KS", "Kia Corporation", 95_600, 94_800, 1_097_305),
		kr("068270.KS", "Celltrion, Inc.", 166_900, 168_200, 553_912),
		kr("035420.KS", "NAVER Corporation", 215_500, 211_000, 802_447),
		kr("005490.KS", "POSCO Holdings Inc.", 276_000, 279_500, 301_558),
		kr("105560.KS", "KB Financial Group Inc.", 106_800, 105_600, 1_204_991),
		kr("055550.KS", "Shinhan Financial Group Co., Ltd.", 60_300, 59_900, 1_530_684),
		kr("012330.KS", "Hyundai Mobis Co.,Ltd", 267_000, 264_500, 140_337),
		kr("051910.KS", "LG Chem, Ltd.", 233_000, 236_500, 287_119),
		kr("006400.KS", "Samsung SDI Co., Ltd.", 181_200, 178_900, 402_583),
		kr("035720.KS", "Kakao Corp.", 51_600, 50_900, 2_908_364),
		kr("028260.KS", "Samsung C&T Corporation", 153_000, 151_700, 254_870),
		kr("066570.KS", "LG Electronics Inc.", 76_700, 77_300, 611_042),
		kr("003550.KS", "LG Corp.", 71_400, 70_800, 188_976),
		kr("032830.KS", "Samsung Life Insurance Co., Ltd.", 99_700, 98_400, 344_210),
		kr("015760.KS", "Korea Electric Power Corporation", 31_850, 31_500, 2_460_118),
		kr("017670.KS", "SK Telecom Co.,Ltd", 54_400, 54_100, 402_007),
		kr("034730.KS", "SK Inc.", 152_400, 150_100, 165_332),
		kr("096770.KS", "SK Innovation Co., Ltd.", 90_100, 91_300, 511_648),
		kr("086790.KS", "Hana Financial Group Inc.", 78_300, 77_600, 987_215),
		kr("247540.KQ", "Ecopro BM. Co., Ltd.", 88_900, 86_700, 702_944),
		kr("086520.KQ", "Ecopro Co., Ltd.", 44_950, 44_100, 1_043_872),
		kr("196170.KQ", "Alteogen Inc.", 330_000, 326_500, 310_455),
	}
}
