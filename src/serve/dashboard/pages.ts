// The dashboard's HTML: the sign-in page and one shell per page (navigation, the page's heading and a place its
// module fills). Every dynamic value is escaped; scripts and styles are files (the CSP allows nothing inline).

export const PAGES = {
  runs: 'Runs',
  models: 'Models and releases',
  keys: 'Keys',
  usage: 'Usage',
  playground: 'Playground',
  plan: 'Plan',
} as const;

export type PageName = keyof typeof PAGES;

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function head(title: string, extra = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)} · ajar dashboard</title>
<link rel="stylesheet" href="/ui/static/style.css">
${extra}</head>`;
}

export function loginPage(notice?: string, error?: string): string {
  return `${head('Sign in')}
<body class="login">
<main id="main">
<h1>ajar dashboard</h1>
<form method="post" action="/ui/login" class="card">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
${error !== undefined ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}${notice !== undefined ? `<p class="notice" role="status">${escapeHtml(notice)}</p>` : ''}
<p class="hint">The token in the server's <code>--admin-token-file</code>. Sessions end after 30 minutes idle.</p>
</form>
</main>
</body>
</html>
`;
}

export function shellPage(page: PageName, csrf: string): string {
  const nav = (Object.entries(PAGES) as Array<[PageName, string]>).map(([name, label]) =>
    `<a href="/ui/${name}"${name === page ? ' aria-current="page"' : ''}>${escapeHtml(label)}</a>`).join('\n');
  return `${head(PAGES[page], `<meta name="csrf-token" content="${escapeHtml(csrf)}">
<link rel="stylesheet" href="/ui/static/vendor/uPlot.min.css">
<script type="module" src="/ui/static/js/${page}.js"></script>
`)}
<body data-page="${page}">
<a class="skip" href="#main">Skip to content</a>
<header>
<span class="brand">ajar</span>
<nav aria-label="Dashboard pages">
${nav}
</nav>
<form method="post" action="/ui/logout" class="logout">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<button type="submit">Sign out</button>
</form>
</header>
<main id="main" tabindex="-1">
<h1>${escapeHtml(PAGES[page])}</h1>
<div id="app"><p class="muted">Loading…</p></div>
</main>
</body>
</html>
`;
}
