#!/usr/bin/env node
/*
 * Browser test of the web page of `sinatra serve`. In headless Chromium it
 * uploads a clip through the page's file input, then checks that:
 *
 *   1. the page starts playing the clip while the server still reports it
 *      as "processing";
 *   2. playback runs past 5 s of media time;
 *   3. hls.js reported no fatal error, the <video> element has no
 *      MediaError, and the page threw no uncaught exception.
 *
 * Usage:
 *   node tests/browser/play.mjs --url http://127.0.0.1:PORT --file CLIP
 *                               [--timeout SECONDS]
 *
 * --timeout bounds the whole run, upload included (default 180 s).
 *
 * The caller starts the server. The clip must take longer to process than
 * the page needs to start playing, or check 1 fails. On a 2-core machine,
 * with `sinatra process` behind a stand-in server, playback of a 60 s
 * 1280x720 clip began 8 s after the upload, at 19% processed. Playback of
 * the 20 s sample of scripts/demo.sh began after 7 s, 5 s before
 * processing finished.
 *
 * Exit codes: 0 when every check passed, 1 when one failed (one line on
 * stderr gives the reason), 2 for a usage error. 77 is a skip, because
 * /usr/bin/chromium (scripts/setup.sh) or the npm package playwright-core
 * (scripts/npm-install.sh) is missing.
 */
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

const CHROMIUM = '/usr/bin/chromium';
const EXIT_PASS = 0;
const EXIT_FAIL = 1;
const EXIT_USAGE = 2;
const EXIT_SKIP = 77;
const DEFAULT_TIMEOUT_S = 180;
const MIN_PLAYED_S = 5;
const CHECK_INTERVAL_MS = 250;

// Flags for Debian's Chromium running as root on a machine whose only
// network is loopback. Without the background-networking flags, Chromium
// keeps trying to reach Google's hosts.
const CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];

const USAGE = 'usage: node tests/browser/play.mjs --url http://127.0.0.1:PORT' +
    ' --file CLIP [--timeout SECONDS]';

class TestFailure extends Error {}

function fail(reason) {
    throw new TestFailure(reason);
}

function parseOptions() {
    let values;
    try {
        ({ values } = parseArgs({
            options: {
                url: { type: 'string' },
                file: { type: 'string' },
                timeout: { type: 'string', default: String(DEFAULT_TIMEOUT_S) },
            },
        }));
    } catch (error) {
        return { error: error.message };
    }

    if (!values.url || !values.file)
        return { error: '--url and --file are required' };
    try {
        new URL(values.url);
    } catch (error) {
        return { error: `invalid --url ${values.url}` };
    }
    if (!existsSync(values.file) || !statSync(values.file).isFile())
        return { error: `--file ${values.file}: file not found` };

    const timeout = Number(values.timeout);
    if (!Number.isFinite(timeout) || timeout <= 0)
        return { error: `invalid --timeout ${values.timeout}: expected ` +
                        'a number of seconds above 0' };

    return { url: values.url, file: values.file, timeoutMs: timeout * 1000 };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Installs, in the page, a listener for the first `playing` event, which
// fetches the status of the video being played. A request sent after the
// event that returns "processing" proves that the video was still
// processing when playback began, because a status never goes back from
// "ready" to "processing".
function installPlayingProbe() {
    const video = window.sinatraPlayer.video;
    const probe = { playing: null };
    window.sinatraPlayTest = probe;

    video.addEventListener('playing', async () => {
        if (probe.playing)
            return;

        const id = window.sinatraPlayer.videoId;
        const playing = { at: Date.now(), videoId: id, status: null };
        probe.playing = playing;
        try {
            const response = await fetch(
                `/api/videos/${encodeURIComponent(id)}`, { cache: 'no-store' });
            const body = await response.json();
            playing.status = response.ok ? body.status
                : `HTTP ${response.status}: ${body.error}`;
            playing.progress = body.progress;
        } catch (error) {
            playing.status = `status request failed: ${error.message}`;
        }
    });
}

// Returns what the test checks, read in the page.
function readPlayerState() {
    const player = window.sinatraPlayer;
    const video = player.video;
    const text = (id) => document.getElementById(id).textContent.trim();

    return {
        currentTime: video.currentTime,
        paused: video.paused,
        mediaError: video.error
            ? `MediaError code ${video.error.code} ${video.error.message}`
            : null,
        fatalErrors: player.errors.filter((e) => e.fatal).map(
            (e) => `${e.source} ${e.type} ${e.details} ${e.message}`.trim()),
        nonFatalErrors: player.errors.filter((e) => !e.fatal).length,
        usesHlsJs: player.hls !== null,
        videoId: player.videoId,
        playing: window.sinatraPlayTest.playing,
        uploadStatus: text('upload-status'),
        playerStatus: text('player-status'),
    };
}

async function fetchVideo(baseUrl, id) {
    try {
        const url = new URL(`/api/videos/${encodeURIComponent(id)}`, baseUrl);
        const response = await fetch(url, { cache: 'no-store' });
        return response.ok ? await response.json() : null;
    } catch (error) {
        return null;
    }
}

function describe(state, video) {
    const status = video
        ? `${video.status} ${Math.floor((video.progress || 0) * 100)}%`
        : 'unknown';
    return `video status ${status}, currentTime ` +
        `${state.currentTime.toFixed(2)} s, player "${state.playerStatus}"`;
}

// Fails on any player error or a failed video, whatever the phase.
function checkErrors(state, video, pageErrors) {
    if (pageErrors.length > 0)
        fail(`the page threw: ${pageErrors[0]}`);
    if (state.fatalErrors.length > 0)
        fail(`fatal player error: ${state.fatalErrors[0]}`);
    if (state.mediaError)
        fail(`the video element has an error: ${state.mediaError}`);
    if (video && video.status === 'failed')
        fail(`processing failed on the server: ${video.error}`);
}

// Polls the page until done(state) holds. Fails on a player error, or at
// the deadline with the description of what it waited for.
async function waitFor(page, context, description, done) {
    for (;;) {
        const state = await page.evaluate(readPlayerState);
        const video = await fetchVideo(context.url, context.id);
        checkErrors(state, video, context.pageErrors);
        if (done(state))
            return state;
        if (Date.now() > context.deadline)
            fail(`timed out after ${context.timeoutMs / 1000} s waiting ` +
                 `for ${description} (${describe(state, video)})`);
        await sleep(CHECK_INTERVAL_MS);
    }
}

async function uploadClip(page, context) {
    const isUpload = (response) =>
        response.request().method() === 'POST' &&
        new URL(response.url()).pathname === '/api/uploads';
    const uploaded = page.waitForResponse(isUpload, {
        timeout: Math.max(1, context.deadline - Date.now()),
    });

    await page.setInputFiles('#file-input', context.file);
    const response = await uploaded.catch(() => fail(
        `timed out after ${context.timeoutMs / 1000} s waiting for the ` +
        'response to POST /api/uploads'));

    const body = await response.json().catch(() => null);
    if (response.status() !== 201 || !body || typeof body.id !== 'string')
        fail(`POST /api/uploads returned ${response.status()}: ` +
             `${body && body.error ? body.error : 'no id in the response'}`);
    return body.id;
}

async function run(chromium, options) {
    const context = {
        ...options,
        deadline: Date.now() + options.timeoutMs,
        pageErrors: [],
        id: null,
    };
    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 30000,
    });

    try {
        const page = await browser.newPage();
        page.setDefaultTimeout(options.timeoutMs);
        page.on('pageerror', (error) => context.pageErrors.push(error.message));

        const response = await page.goto(options.url).catch((error) =>
            fail(`cannot open ${options.url}: ${error.message}`));
        if (!response || !response.ok())
            fail(`GET ${options.url} returned ` +
                 `${response ? response.status() : 'no response'}`);
        const ready = await page.evaluate(
            () => Boolean(window.sinatraPlayer && window.Hls));
        if (!ready)
            fail('the page did not load hls.js from /vendor/hls.min.js or ' +
                 'did not set window.sinatraPlayer');
        await page.evaluate(installPlayingProbe);

        const uploadStart = Date.now();
        context.id = await uploadClip(page, context);

        // Check 1: playback began while the video was processing.
        let state = await waitFor(page, context, 'playback to start',
            (s) => s.playing && s.playing.status !== null &&
                   s.currentTime > 0 && !s.paused);
        const playing = state.playing;
        if (playing.videoId !== context.id)
            fail(`the page played video ${playing.videoId}, not the ` +
                 `uploaded ${context.id}`);
        if (playing.status !== 'processing')
            fail(`playback began when the video status was ` +
                 `"${playing.status}", not "processing"; use a clip that ` +
                 'takes longer to process');

        // Check 2: media time passes 5 s, counted from where playback began
        // as well, so a timeline that starts late cannot pass at once.
        const startTime = state.currentTime;
        state = await waitFor(page, context, `${MIN_PLAYED_S} s of playback`,
            (s) => s.currentTime > MIN_PLAYED_S &&
                   s.currentTime - startTime >= MIN_PLAYED_S);

        // Check 3: no player error. waitFor() has checked on every poll,
        // and the final state is checked once more here.
        checkErrors(state, null, context.pageErrors);
        if (!state.usesHlsJs)
            fail('the page played without hls.js, which Chromium supports');

        const startedAfter = (playing.at - uploadStart) / 1000;
        const progress = Math.floor((playing.progress || 0) * 100);
        console.log(`play.mjs: passed: ${basename(options.file)} started ` +
                    `playing ${startedAfter.toFixed(1)} s after the upload ` +
                    `began, while processing at ${progress}%, and reached ` +
                    `${state.currentTime.toFixed(1)} s with no fatal ` +
                    `player error (${state.nonFatalErrors} non-fatal)`);
    } finally {
        await browser.close();
    }
}

async function main() {
    const options = parseOptions();
    if (options.error) {
        console.error(`play.mjs: ${options.error}\n${USAGE}`);
        return EXIT_USAGE;
    }

    if (!existsSync(CHROMIUM)) {
        console.log(`play.mjs: skipped: ${CHROMIUM} is missing; ` +
                    'run scripts/setup.sh');
        return EXIT_SKIP;
    }
    let chromium;
    try {
        ({ chromium } = await import('playwright-core'));
    } catch (error) {
        console.log('play.mjs: skipped: the npm package playwright-core is ' +
                    'missing; run scripts/npm-install.sh');
        return EXIT_SKIP;
    }

    // Playwright's own timeouts end every wait, and this timer ends a hung
    // browser.
    const watchdog = setTimeout(() => {
        console.error('play.mjs: failed: the browser did not finish ' +
                      `within ${options.timeoutMs / 1000 + 60} s`);
        process.exit(EXIT_FAIL);
    }, options.timeoutMs + 60000);
    watchdog.unref();

    try {
        await run(chromium, options);
        return EXIT_PASS;
    } catch (error) {
        const reason = error instanceof TestFailure ? error.message
            : `${error.name}: ${error.message}`;
        console.error(`play.mjs: failed: ${reason.split('\n')[0]}`);
        return EXIT_FAIL;
    }
}

process.exitCode = await main();
