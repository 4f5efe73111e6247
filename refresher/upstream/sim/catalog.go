package sim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"quotehub"
)

// ExchangeSim is the exchange of the Synthetic symbols. The market calendar
// does not know it, so their market is always open.
const ExchangeSim = "SIM"

// listing is one built-in catalogue entry with its base price: the
// approximate real price the simulation starts from, in the currency of the
// listing.
type listing struct {
	symbol, name, exchange, currency string
	price                            float64
}

// builtin is the built-in catalogue: KOSPI stocks, Upbit KRW markets and US
// stocks with approximate real prices (mid-2025).
var builtin = []listing{
	// KOSPI (Korea Exchange), KRW.
	{"005930.KS", "삼성전자 Samsung Electronics", quotehub.ExchangeKRX, "KRW", 72000},
	{"000660.KS", "SK하이닉스 SK hynix", quotehub.ExchangeKRX, "KRW", 270000},
	{"373220.KS", "LG에너지솔루션 LG Energy Solution", quotehub.ExchangeKRX, "KRW", 360000},
	{"207940.KS", "삼성바이오로직스 Samsung Biologics", quotehub.ExchangeKRX, "KRW", 1050000},
	{"005380.KS", "현대차 Hyundai Motor", quotehub.ExchangeKRX, "KRW", 215000},
	{"000270.KS", "기아 Kia", quotehub.ExchangeKRX, "KRW", 98000},
	{"068270.KS", "셀트리온 Celltrion", quotehub.ExchangeKRX, "KRW", 175000},
	{"035420.KS", "네이버 NAVER", quotehub.ExchangeKRX, "KRW", 225000},
	{"005490.KS", "POSCO홀딩스 POSCO Holdings", quotehub.ExchangeKRX, "KRW", 310000},
	{"051910.KS", "LG화학 LG Chem", quotehub.ExchangeKRX, "KRW", 260000},
	{"006400.KS", "삼성SDI Samsung SDI", quotehub.ExchangeKRX, "KRW", 205000},
	{"035720.KS", "카카오 Kakao", quotehub.ExchangeKRX, "KRW", 58000},
	{"105560.KS", "KB금융 KB Financial Group", quotehub.ExchangeKRX, "KRW", 112000},
	{"055550.KS", "신한지주 Shinhan Financial Group", quotehub.ExchangeKRX, "KRW", 62000},
	{"012330.KS", "현대모비스 Hyundai Mobis", quotehub.ExchangeKRX, "KRW", 290000},
	{"028260.KS", "삼성물산 Samsung C&T", quotehub.ExchangeKRX, "KRW", 165000},
	{"066570.KS", "LG전자 LG Electronics", quotehub.ExchangeKRX, "KRW", 78000},
	{"003550.KS", "엘지 LG Corp.", quotehub.ExchangeKRX, "KRW", 72000},
	{"096770.KS", "SK이노베이션 SK Innovation", quotehub.ExchangeKRX, "KRW", 110000},
	{"034730.KS", "에스케이 SK Inc.", quotehub.ExchangeKRX, "KRW", 195000},
	{"015760.KS", "한국전력 Korea Electric Power (KEPCO)", quotehub.ExchangeKRX, "KRW", 33000},
	{"032830.KS", "삼성생명 Samsung Life Insurance", quotehub.ExchangeKRX, "KRW", 115000},
	{"086790.KS", "하나금융지주 Hana Financial Group", quotehub.ExchangeKRX, "KRW", 88000},
	{"000810.KS", "삼성화재 Samsung Fire & Marine Insurance", quotehub.ExchangeKRX, "KRW", 430000},
	{"017670.KS", "SK텔레콤 SK Telecom", quotehub.ExchangeKRX, "KRW", 54000},
	{"030200.KS", "케이티 KT Corp.", quotehub.ExchangeKRX, "KRW", 53000},
	{"033780.KS", "케이티앤지 KT&G", quotehub.ExchangeKRX, "KRW", 132000},
	{"009150.KS", "삼성전기 Samsung Electro-Mechanics", quotehub.ExchangeKRX, "KRW", 140000},
	{"018260.KS", "삼성에스디에스 Samsung SDS", quotehub.ExchangeKRX, "KRW", 165000},
	{"011200.KS", "에이치엠엠 HMM", quotehub.ExchangeKRX, "KRW", 23000},
	{"010130.KS", "고려아연 Korea Zinc", quotehub.ExchangeKRX, "KRW", 820000},
	{"012450.KS", "한화에어로스페이스 Hanwha Aerospace", quotehub.ExchangeKRX, "KRW", 880000},
	{"329180.KS", "HD현대중공업 HD Hyundai Heavy Industries", quotehub.ExchangeKRX, "KRW", 420000},
	{"009540.KS", "HD한국조선해양 HD Korea Shipbuilding & Offshore Engineering", quotehub.ExchangeKRX, "KRW", 330000},
	{"042660.KS", "한화오션 Hanwha Ocean", quotehub.ExchangeKRX, "KRW", 105000},
	{"010950.KS", "에쓰오일 S-Oil", quotehub.ExchangeKRX, "KRW", 64000},
	{"316140.KS", "우리금융지주 Woori Financial Group", quotehub.ExchangeKRX, "KRW", 23500},
	{"024110.KS", "기업은행 Industrial Bank of Korea", quotehub.ExchangeKRX, "KRW", 19500},
	{"323410.KS", "카카오뱅크 KakaoBank", quotehub.ExchangeKRX, "KRW", 28000},
	{"259960.KS", "크래프톤 Krafton", quotehub.ExchangeKRX, "KRW", 370000},
	{"352820.KS", "하이브 HYBE", quotehub.ExchangeKRX, "KRW", 290000},
	{"003670.KS", "포스코퓨처엠 POSCO Future M", quotehub.ExchangeKRX, "KRW", 135000},
	{"036570.KS", "엔씨소프트 NCSOFT", quotehub.ExchangeKRX, "KRW", 210000},
	{"011170.KS", "롯데케미칼 Lotte Chemical", quotehub.ExchangeKRX, "KRW", 62000},
	{"090430.KS", "아모레퍼시픽 Amorepacific", quotehub.ExchangeKRX, "KRW", 125000},
	{"034020.KS", "두산에너빌리티 Doosan Enerbility", quotehub.ExchangeKRX, "KRW", 62000},
	{"010140.KS", "삼성중공업 Samsung Heavy Industries", quotehub.ExchangeKRX, "KRW", 17500},
	{"047810.KS", "한국항공우주 Korea Aerospace Industries", quotehub.ExchangeKRX, "KRW", 88000},

	// Upbit KRW markets, KRW per coin.
	{"KRW-BTC", "비트코인 Bitcoin", quotehub.ExchangeUpbit, "KRW", 140000000},
	{"KRW-ETH", "이더리움 Ethereum", quotehub.ExchangeUpbit, "KRW", 5000000},
	{"KRW-XRP", "리플 XRP", quotehub.ExchangeUpbit, "KRW", 3500},
	{"KRW-SOL", "솔라나 Solana", quotehub.ExchangeUpbit, "KRW", 280000},
	{"KRW-DOGE", "도지코인 Dogecoin", quotehub.ExchangeUpbit, "KRW", 320},
	{"KRW-ADA", "에이다 Cardano", quotehub.ExchangeUpbit, "KRW", 1100},
	{"KRW-TRX", "트론 TRON", quotehub.ExchangeUpbit, "KRW", 420},
	{"KRW-AVAX", "아발란체 Avalanche", quotehub.ExchangeUpbit, "KRW", 35000},
	{"KRW-LINK", "체인링크 Chainlink", quotehub.ExchangeUpbit, "KRW", 30000},
	{"KRW-DOT", "폴카닷 Polkadot", quotehub.ExchangeUpbit, "KRW", 6000},
	{"KRW-BCH", "비트코인캐시 Bitcoin Cash", quotehub.ExchangeUpbit, "KRW", 700000},
	{"KRW-ETC", "이더리움클래식 Ethereum Classic", quotehub.ExchangeUpbit, "KRW", 30000},
	{"KRW-SHIB", "시바이누 Shiba Inu", quotehub.ExchangeUpbit, "KRW", 0.019},
	{"KRW-XLM", "스텔라루멘 Stellar", quotehub.ExchangeUpbit, "KRW", 550},
	{"KRW-HBAR", "헤데라 Hedera", quotehub.ExchangeUpbit, "KRW", 350},
	{"KRW-SUI", "수이 Sui", quotehub.ExchangeUpbit, "KRW", 5000},
	{"KRW-NEAR", "니어프로토콜 NEAR Protocol", quotehub.ExchangeUpbit, "KRW", 4000},
	{"KRW-APT", "앱토스 Aptos", quotehub.ExchangeUpbit, "KRW", 7000},
	{"KRW-ARB", "아비트럼 Arbitrum", quotehub.ExchangeUpbit, "KRW", 600},
	{"KRW-POL", "폴리곤 에코시스템 토큰 Polygon Ecosystem Token", quotehub.ExchangeUpbit, "KRW", 350},
	{"KRW-ATOM", "코스모스 Cosmos", quotehub.ExchangeUpbit, "KRW", 6000},
	{"KRW-ALGO", "알고랜드 Algorand", quotehub.ExchangeUpbit, "KRW", 350},
	{"KRW-SAND", "샌드박스 The Sandbox", quotehub.ExchangeUpbit, "KRW", 400},
	{"KRW-MANA", "디센트럴랜드 Decentraland", quotehub.ExchangeUpbit, "KRW", 400},
	{"KRW-AXS", "엑시인피니티 Axie Infinity", quotehub.ExchangeUpbit, "KRW", 3500},
	{"KRW-AAVE", "에이브 Aave", quotehub.ExchangeUpbit, "KRW", 400000},
	{"KRW-UNI", "유니스왑 Uniswap", quotehub.ExchangeUpbit, "KRW", 13000},
	{"KRW-STX", "스택스 Stacks", quotehub.ExchangeUpbit, "KRW", 1000},
	{"KRW-IMX", "이뮤터블엑스 Immutable", quotehub.ExchangeUpbit, "KRW", 800},
	{"KRW-SEI", "세이 Sei", quotehub.ExchangeUpbit, "KRW", 400},
	{"KRW-PEPE", "페페 Pepe", quotehub.ExchangeUpbit, "KRW", 0.015},
	{"KRW-BTT", "비트토렌트 BitTorrent", quotehub.ExchangeUpbit, "KRW", 0.0012},
	{"KRW-BSV", "비트코인에스브이 Bitcoin SV", quotehub.ExchangeUpbit, "KRW", 45000},
	{"KRW-CRO", "크로노스 Cronos", quotehub.ExchangeUpbit, "KRW", 150},
	{"KRW-THETA", "쎄타토큰 Theta Network", quotehub.ExchangeUpbit, "KRW", 1100},
	{"KRW-VET", "비체인 VeChain", quotehub.ExchangeUpbit, "KRW", 35},
	{"KRW-GRT", "더그래프 The Graph", quotehub.ExchangeUpbit, "KRW", 130},
	{"KRW-ENS", "이더리움네임서비스 Ethereum Name Service", quotehub.ExchangeUpbit, "KRW", 30000},
	{"KRW-FLOW", "플로우 Flow", quotehub.ExchangeUpbit, "KRW", 550},
	{"KRW-CHZ", "칠리즈 Chiliz", quotehub.ExchangeUpbit, "KRW", 60},
	{"KRW-ZRX", "제로엑스 0x Protocol", quotehub.ExchangeUpbit, "KRW", 350},
	{"KRW-BAT", "베이직어텐션토큰 Basic Attention Token", quotehub.ExchangeUpbit, "KRW", 230},
	{"KRW-ICX", "아이콘 ICON", quotehub.ExchangeUpbit, "KRW", 200},
	{"KRW-QTUM", "퀀텀 Qtum", quotehub.ExchangeUpbit, "KRW", 3500},
	{"KRW-NEO", "네오 NEO", quotehub.ExchangeUpbit, "KRW", 8000},
	{"KRW-IOTA", "아이오타 IOTA", quotehub.ExchangeUpbit, "KRW", 300},
	{"KRW-ONDO", "온도파이낸스 Ondo Finance", quotehub.ExchangeUpbit, "KRW", 1300},
	{"KRW-ENA", "에테나 Ethena", quotehub.ExchangeUpbit, "KRW", 700},
	{"KRW-TIA", "셀레스티아 Celestia", quotehub.ExchangeUpbit, "KRW", 4000},
	{"KRW-WLD", "월드코인 Worldcoin", quotehub.ExchangeUpbit, "KRW", 1800},

	// US stocks on Nasdaq, USD.
	{"AAPL", "Apple Inc.", quotehub.ExchangeNASDAQ, "USD", 230},
	{"MSFT", "Microsoft Corporation", quotehub.ExchangeNASDAQ, "USD", 500},
	{"NVDA", "NVIDIA Corporation", quotehub.ExchangeNASDAQ, "USD", 180},
	{"AMZN", "Amazon.com, Inc.", quotehub.ExchangeNASDAQ, "USD", 225},
	{"GOOGL", "Alphabet Inc. Class A", quotehub.ExchangeNASDAQ, "USD", 200},
	{"META", "Meta Platforms, Inc.", quotehub.ExchangeNASDAQ, "USD", 740},
	{"TSLA", "Tesla, Inc.", quotehub.ExchangeNASDAQ, "USD", 340},
	{"AVGO", "Broadcom Inc.", quotehub.ExchangeNASDAQ, "USD", 300},
	{"COST", "Costco Wholesale Corporation", quotehub.ExchangeNASDAQ, "USD", 950},
	{"NFLX", "Netflix, Inc.", quotehub.ExchangeNASDAQ, "USD", 1200},
	{"AMD", "Advanced Micro Devices, Inc.", quotehub.ExchangeNASDAQ, "USD", 160},
	{"ADBE", "Adobe Inc.", quotehub.ExchangeNASDAQ, "USD", 360},
	{"PEP", "PepsiCo, Inc.", quotehub.ExchangeNASDAQ, "USD", 145},
	{"CSCO", "Cisco Systems, Inc.", quotehub.ExchangeNASDAQ, "USD", 68},
	{"INTC", "Intel Corporation", quotehub.ExchangeNASDAQ, "USD", 24},
	{"QCOM", "QUALCOMM Incorporated", quotehub.ExchangeNASDAQ, "USD", 160},
	{"TXN", "Texas Instruments Incorporated", quotehub.ExchangeNASDAQ, "USD", 190},
	{"AMGN", "Amgen Inc.", quotehub.ExchangeNASDAQ, "USD", 290},
	{"INTU", "Intuit Inc.", quotehub.ExchangeNASDAQ, "USD", 670},
	{"PYPL", "PayPal Holdings, Inc.", quotehub.ExchangeNASDAQ, "USD", 70},
	{"SBUX", "Starbucks Corporation", quotehub.ExchangeNASDAQ, "USD", 90},
	{"BKNG", "Booking Holdings Inc.", quotehub.ExchangeNASDAQ, "USD", 5400},
	{"MU", "Micron Technology, Inc.", quotehub.ExchangeNASDAQ, "USD", 120},
	{"CMCSA", "Comcast Corporation", quotehub.ExchangeNASDAQ, "USD", 35},
	{"PLTR", "Palantir Technologies Inc.", quotehub.ExchangeNASDAQ, "USD", 170},

	// US stocks on the New York Stock Exchange, USD.
	{"JPM", "JPMorgan Chase & Co.", quotehub.ExchangeNYSE, "USD", 290},
	{"V", "Visa Inc.", quotehub.ExchangeNYSE, "USD", 345},
	{"MA", "Mastercard Incorporated", quotehub.ExchangeNYSE, "USD", 570},
	{"UNH", "UnitedHealth Group Incorporated", quotehub.ExchangeNYSE, "USD", 300},
	{"JNJ", "Johnson & Johnson", quotehub.ExchangeNYSE, "USD", 170},
	{"PG", "The Procter & Gamble Company", quotehub.ExchangeNYSE, "USD", 155},
	{"XOM", "Exxon Mobil Corporation", quotehub.ExchangeNYSE, "USD", 110},
	{"HD", "The Home Depot, Inc.", quotehub.ExchangeNYSE, "USD", 400},
	{"KO", "The Coca-Cola Company", quotehub.ExchangeNYSE, "USD", 70},
	{"BAC", "Bank of America Corporation", quotehub.ExchangeNYSE, "USD", 48},
	{"DIS", "The Walt Disney Company", quotehub.ExchangeNYSE, "USD", 118},
	{"CVX", "Chevron Corporation", quotehub.ExchangeNYSE, "USD", 155},
	{"ORCL", "Oracle Corporation", quotehub.ExchangeNYSE, "USD", 230},
	{"CRM", "Salesforce, Inc.", quotehub.ExchangeNYSE, "USD", 250},
	{"ABBV", "AbbVie Inc.", quotehub.ExchangeNYSE, "USD", 200},
	{"MRK", "Merck & Co., Inc.", quotehub.ExchangeNYSE, "USD", 85},
	{"PFE", "Pfizer Inc.", quotehub.ExchangeNYSE, "USD", 25},
	{"NKE", "NIKE, Inc.", quotehub.ExchangeNYSE, "USD", 72},
	{"T", "AT&T Inc.", quotehub.ExchangeNYSE, "USD", 28},
	{"IBM", "International Business Machines Corporation", quotehub.ExchangeNYSE, "USD", 250},
	{"GS", "The Goldman Sachs Group, Inc.", quotehub.ExchangeNYSE, "USD", 720},
	{"MCD", "McDonald's Corporation", quotehub.ExchangeNYSE, "USD", 300},
	{"CAT", "Caterpillar Inc.", quotehub.ExchangeNYSE, "USD", 400},
	{"BA", "The Boeing Company", quotehub.ExchangeNYSE, "USD", 220},
	{"LLY", "Eli Lilly and Company", quotehub.ExchangeNYSE, "USD", 780},

	// Foreign exchange, for valuing portfolios in a base currency
	// (valuation.FXSymbol): won per dollar.
	{"FX:USDKRW", "USD/KRW 원/달러 환율", ExchangeFX, "KRW", 1390},
}

// ExchangeFX is the exchange of FX pairs; the market calendar does not
// know it, so they are always open.
const ExchangeFX = "FX"

// params are the simulation parameters of a built-in symbol.
type params struct {
	price  float64 // base price
	weight float64 // turnover relative to its market's typical symbol
}

// builtinParams maps each built-in symbol to its parameters. The catalogue
// lists each market roughly by size, so the turnover weight falls with the
// rank within the market: the largest names trade the most.
var builtinParams = func() map[string]params {
	m := make(map[string]params, len(builtin))
	rank := map[*class]int{}
	for _, l := range builtin {
		c := classOf(l.exchange)
		m[l.symbol] = params{price: l.price, weight: 3 / (1 + float64(rank[c])/4)}
		rank[c]++
	}
	return m
}()

var sortedCatalog = sync.OnceValue(func() []quotehub.SymbolInfo {
	out := make([]quotehub.SymbolInfo, len(builtin))
	for i, l := range builtin {
		out[i] = quotehub.SymbolInfo{Symbol: l.symbol, Name: l.name, Exchange: l.exchange, Currency: l.currency}
	}
	slices.SortFunc(out, func(a, b quotehub.SymbolInfo) int { return strings.Compare(a.Symbol, b.Symbol) })
	return out
})

// Catalog returns the built-in catalogue, sorted by symbol: KOSPI stocks
// (exchange KRX, currency KRW, names in Korean and English), 50 Upbit KRW
// crypto markets (exchange UPBIT, currency KRW) and 50 US stocks (exchange
// NASDAQ or NYSE, currency USD). Every symbol is already normalised. The
// slice is a fresh copy the caller may modify.
func Catalog() []quotehub.SymbolInfo {
	return slices.Clone(sortedCatalog())
}

// syntheticPrefix starts every Synthetic symbol.
const syntheticPrefix = "SYN-"

// Synthetic returns n synthetic symbols, SYN-000001 to SYN-n (numbers
// zero-padded to six digits), named "Synthetic 000001" and so on, on
// exchange ExchangeSim (always open) in USD, sorted by symbol. They let
// tests and benchmarks grow the universe cheaply: a Provider creates no
// state for a symbol until it is first fetched. Synthetic returns nil when
// n <= 0 and supports n up to 999,999.
func Synthetic(n int) []quotehub.SymbolInfo {
	if n <= 0 {
		return nil
	}
	out := make([]quotehub.SymbolInfo, n)
	for i := range out {
		num := fmt.Sprintf("%06d", i+1)
		out[i] = quotehub.SymbolInfo{
			Symbol:   syntheticPrefix + num,
			Name:     "Synthetic " + num,
			Exchange: ExchangeSim,
			Currency: "USD",
		}
	}
	return out
}

// turnoverWeight returns how much more than its market's typical symbol a
// symbol trades: falling with catalogue rank for built-in symbols, 1 for
// the others.
func turnoverWeight(symbol string) float64 {
	if p, ok := builtinParams[symbol]; ok {
		return p.weight
	}
	return 1
}

// basePrice returns the price the simulation of symbol starts from: the
// catalogue price of a built-in symbol; for a synthetic symbol a price
// between 10 and 1000 derived from its number; for any other symbol a price
// in the same range derived from a hash of the symbol.
func basePrice(symbol string) float64 {
	if p, ok := builtinParams[symbol]; ok {
		return p.price
	}
	var h uint64
	if rest, ok := strings.CutPrefix(symbol, syntheticPrefix); ok {
		if n, err := strconv.ParseUint(rest, 10, 64); err == nil {
			h = mix64(n + 0x5eed)
		} else {
			h = hashString(symbol)
		}
	} else {
		h = hashString(symbol)
	}
	// Log-uniform in [10, 1000), two decimals.
	frac := float64(h>>11) / (1 << 53)
	p := 10 * math.Pow(100, frac)
	return math.Max(10, math.Round(p*100)/100)
}
