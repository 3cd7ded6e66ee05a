/*
 * The web page of `sinatra serve`. It uploads a file to /api/uploads,
 * polls /api/videos about once a second, and plays a video's HLS master
 * playlist with hls.js, or natively where the browser has no Media Source
 * Extensions but plays HLS itself.
 *
 * Every string from the API reaches the page through textContent or a
 * property, never as HTML.
 *
 * window.sinatraPlayer is the hook for tests: the hls.js instance (null
 * when nothing plays or playback is native), the <video> element, the id
 * and playlist being played, and errors, which gets every hls.js ERROR
 * event (fatal or not) and every MediaError of the <video> element.
 */
'use strict';

(function () {
    const POLL_INTERVAL_MS = 1000;
    const HIDDEN_POLL_INTERVAL_MS = 5000;
    const HLS_MIME_TYPE = 'application/vnd.apple.mpegurl';
    // Recovery attempts after fatal hls.js errors, per playlist loaded.
    const MAX_RECOVERIES = 3;
    const NETWORK_RETRY_DELAY_MS = 2000;
    // Maximum number of non-fatal errors kept in sinatraPlayer.errors.
    // Fatal errors are all kept.
    const MAX_KEPT_ERRORS = 500;

    const STATUS_LABELS = {
        queued: 'Queued',
        processing: 'Processing',
        ready: 'Ready',
        failed: 'Failed',
    };

    const MEDIA_ERROR_NAMES = {
        1: 'MEDIA_ERR_ABORTED',
        2: 'MEDIA_ERR_NETWORK',
        3: 'MEDIA_ERR_DECODE',
        4: 'MEDIA_ERR_SRC_NOT_SUPPORTED',
    };

    const byId = (id) => document.getElementById(id);
    const elements = {
        dropZone: byId('drop-zone'),
        fileInput: byId('file-input'),
        progressRow: byId('upload-progress-row'),
        progress: byId('upload-progress'),
        progressText: byId('upload-progress-text'),
        cancelButton: byId('upload-cancel'),
        uploadStatus: byId('upload-status'),
        video: byId('player'),
        playerTitle: byId('player-title'),
        playerStatus: byId('player-status'),
        listStatus: byId('list-status'),
        table: byId('video-table'),
        rows: byId('video-rows'),
    };

    const player = {
        hls: null,
        video: elements.video,
        errors: [],
        videoId: null,
        playlist: null,
    };
    window.sinatraPlayer = player;
    const idleTitle = elements.playerTitle.textContent;

    // The upload in flight, as { xhr, name }, or null.
    let upload = null;
    // The video to play once it has a playlist other than previousPlaylist,
    // as { id, previousPlaylist, afterPoll }, or null. Only polls numbered
    // above afterPoll started after the upload and show its state.
    let pendingAutoplay = null;
    let recoveries = 0;
    let pollTimer = null;
    let pollInFlight = false;
    let pollCount = 0;
    // Video objects of the last poll, and the table row of each, by id.
    const videos = new Map();
    const rows = new Map();

    /* Formatting */

    function setText(element, text) {
        if (element.textContent !== text)
            element.textContent = text;
    }

    function formatBytes(bytes) {
        if (bytes >= 1e9)
            return (bytes / 1e9).toFixed(2) + ' GB';
        if (bytes >= 1e6)
            return (bytes / 1e6).toFixed(1) + ' MB';
        return Math.ceil(bytes / 1e3) + ' kB';
    }

    function formatDuration(seconds) {
        if (typeof seconds !== 'number' || !Number.isFinite(seconds) ||
            seconds < 0)
            return 'unknown';

        const total = Math.round(seconds);
        const h = Math.floor(total / 3600);
        const m = Math.floor(total / 60) % 60;
        const s = String(total % 60).padStart(2, '0');
        return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}`
                     : `${m}:${s}`;
    }

    // The ladder is shown as given: a list of rung names, heights or
    // objects with a name or height, or a plain string.
    function formatLadder(ladder) {
        if (typeof ladder === 'string')
            return ladder;
        if (!Array.isArray(ladder))
            return '';

        const names = ladder.map((rung) => {
            if (typeof rung === 'string')
                return rung;
            if (typeof rung === 'number')
                return `${rung}p`;
            if (rung && typeof rung.name === 'string')
                return rung.name;
            if (rung && typeof rung.height === 'number')
                return `${rung.height}p`;
            return '';
        });
        return names.filter((name) => name !== '').join(', ');
    }

    function clampProgress(value) {
        if (typeof value !== 'number' || !Number.isFinite(value))
            return 0;
        return Math.min(1, Math.max(0, value));
    }

    // Returns url when it names a resource of this server, else null, so
    // no API value can point the player or an image at another host.
    function sameOriginUrl(url) {
        if (typeof url !== 'string' || url === '')
            return null;
        try {
            const parsed = new URL(url, window.location.href);
            return parsed.origin === window.location.origin ? url : null;
        } catch (error) {
            return null;
        }
    }

    function playlistOf(video) {
        return video ? sameOriginUrl(video.playlist) : null;
    }

    function nameOf(video) {
        return typeof video.name === 'string' && video.name !== ''
            ? video.name : video.id;
    }

    /* Upload */

    function startUpload(file) {
        if (upload) {
            setText(elements.uploadStatus,
                    `${upload.name} is still uploading. Wait for it to ` +
                    'finish or cancel it first.');
            return;
        }

        const form = new FormData();
        form.append('file', file, file.name);

        const xhr = new XMLHttpRequest();
        upload = { xhr, name: file.name };
        xhr.open('POST', '/api/uploads');
        xhr.setRequestHeader('Accept', 'application/json');
        xhr.upload.addEventListener('progress',
                                    (event) => showUploadProgress(event));
        xhr.addEventListener('load', () => finishUpload(xhr, file.name));
        xhr.addEventListener('error', () => endUpload(
            `Upload of ${file.name} failed: the server could not be ` +
            'reached. Check that sinatra serve is running, then try again.'));
        xhr.addEventListener('abort', () => endUpload(
            `Upload of ${file.name} cancelled.`));

        elements.progress.value = 0;
        setText(elements.progressText, `0 of ${formatBytes(file.size)}`);
        elements.progressRow.hidden = false;
        setText(elements.uploadStatus, `Uploading ${file.name}…`);
        xhr.send(form);
    }

    function showUploadProgress(event) {
        if (!event.lengthComputable || event.total === 0)
            return;

        const fraction = event.loaded / event.total;
        elements.progress.value = fraction;
        setText(elements.progressText,
                `${formatBytes(event.loaded)} of ` +
                `${formatBytes(event.total)} ` +
                `(${Math.floor(fraction * 100)}%)`);
    }

    function finishUpload(xhr, name) {
        let body = null;
        try {
            body = JSON.parse(xhr.responseText);
        } catch (error) {
            body = null;
        }

        if (xhr.status >= 200 && xhr.status < 300 && body &&
            typeof body.id === 'string') {
            // A new upload of a known name keeps its id, and the old
            // playlist stays listed until the new one replaces it.
            pendingAutoplay = {
                id: body.id,
                previousPlaylist: playlistOf(videos.get(body.id)),
                afterPoll: pollCount,
            };
            endUpload(`Uploaded ${name}. It starts playing here as soon ` +
                      'as its first segments are ready.');
            pollNow();
            return;
        }

        const reason = body && typeof body.error === 'string'
            ? body.error
            : `HTTP ${xhr.status} ${xhr.statusText}`.trim();
        endUpload(`Upload of ${name} failed: ${reason}`);
    }

    function endUpload(message) {
        upload = null;
        elements.progressRow.hidden = true;
        // Lets the same file be chosen again.
        elements.fileInput.value = '';
        setText(elements.uploadStatus, message);
    }

    function takeFiles(files) {
        if (!files || files.length === 0)
            return;
        if (files.length > 1) {
            setText(elements.uploadStatus,
                    `Drop one file at a time: ${files.length} files were ` +
                    'dropped and none was uploaded.');
            return;
        }
        startUpload(files[0]);
    }

    function hasFiles(event) {
        return event.dataTransfer &&
            Array.from(event.dataTransfer.types).includes('Files');
    }

    function setUpDropZone() {
        const zone = elements.dropZone;

        const onDragOver = (event) => {
            if (!hasFiles(event))
                return;
            event.preventDefault();
            event.dataTransfer.dropEffect = 'copy';
            zone.classList.add('drag-over');
        };
        zone.addEventListener('dragenter', onDragOver);
        zone.addEventListener('dragover', onDragOver);
        zone.addEventListener('dragleave', (event) => {
            if (!zone.contains(event.relatedTarget))
                zone.classList.remove('drag-over');
        });
        zone.addEventListener('drop', (event) => {
            event.preventDefault();
            zone.classList.remove('drag-over');
            takeFiles(event.dataTransfer.files);
        });

        // A file dropped elsewhere would make the browser leave the page
        // to open it.
        window.addEventListener('dragover', (event) => {
            if (!hasFiles(event) || zone.contains(event.target))
                return;
            event.preventDefault();
            event.dataTransfer.dropEffect = 'none';
        });
        window.addEventListener('drop', (event) => {
            if (!zone.contains(event.target))
                event.preventDefault();
        });
    }

    /* Player */

    function setPlayerState(text) {
        setText(elements.playerStatus, text);
    }

    function recordError(entry) {
        player.errors.push(entry);
        if (player.errors.length <= MAX_KEPT_ERRORS)
            return;

        const oldest = player.errors.findIndex((e) => !e.fatal);
        if (oldest >= 0)
            player.errors.splice(oldest, 1);
    }

    function onHlsError(hls, data) {
        const message = data.error && data.error.message
            ? data.error.message : (data.reason || '');
        recordError({
            source: 'hls.js',
            fatal: Boolean(data.fatal),
            type: data.type,
            details: data.details,
            message,
            videoId: player.videoId,
            time: Date.now(),
        });

        if (!data.fatal || hls !== player.hls)
            return;

        const types = window.Hls.ErrorTypes;
        const recoverable = data.type === types.MEDIA_ERROR ||
            data.type === types.NETWORK_ERROR;
        if (!recoverable || recoveries >= MAX_RECOVERIES) {
            const current = videos.get(player.videoId);
            const name = current ? nameOf(current) : player.videoId;
            stopPlayback();
            setPlayerState(`Playback of ${name} failed: ${data.details}` +
                           (message ? ` (${message})` : '') +
                           '. Choose the video again to retry.');
            return;
        }
        recoveries++;

        if (data.type === types.MEDIA_ERROR) {
            setPlayerState(`Media error (${data.details}); recovering.`);
            hls.recoverMediaError();
            return;
        }
        setPlayerState(`Network error (${data.details}); retrying in ` +
                       `${NETWORK_RETRY_DELAY_MS / 1000} s.`);
        setTimeout(() => {
            if (hls === player.hls)
                hls.startLoad();
        }, NETWORK_RETRY_DELAY_MS);
    }

    function onVideoError() {
        const error = elements.video.error;
        if (!error || !player.videoId)
            return;

        recordError({
            source: 'video',
            fatal: true,
            type: 'mediaError',
            details: MEDIA_ERROR_NAMES[error.code] || `code ${error.code}`,
            message: error.message || '',
            videoId: player.videoId,
            time: Date.now(),
        });
        setPlayerState(`The browser could not play the video: ` +
                       `${MEDIA_ERROR_NAMES[error.code] || error.code}` +
                       (error.message ? ` (${error.message})` : '') + '.');
    }

    function stopPlayback() {
        if (player.hls) {
            player.hls.destroy();
            player.hls = null;
        }
        elements.video.removeAttribute('src');
        elements.video.load();
        player.videoId = null;
        player.playlist = null;
        recoveries = 0;
        setText(elements.playerTitle, idleTitle);
        markPlayingRow();
    }

    // Starts playback. The default autoplay policies of Chromium, Firefox
    // and Safari allow muted playback, so a start the browser blocked is
    // tried again muted.
    function startPlayback(muted) {
        const video = elements.video;
        if (muted)
            video.muted = true;

        video.play().catch((error) => {
            if (error.name === 'AbortError')
                return;
            if (error.name === 'NotAllowedError' && !video.muted) {
                startPlayback(true);
                return;
            }
            setPlayerState(`Playback did not start: ${error.message}`);
        });
    }

    // Plays video from the start. An automatic start plays muted, and a
    // start the user asked for keeps the sound setting of the controls.
    function playVideo(video, automatic) {
        const url = playlistOf(video);
        if (!url)
            return;
        if (player.videoId === video.id && player.playlist === url) {
            startPlayback(automatic);
            return;
        }

        stopPlayback();
        player.videoId = video.id;
        player.playlist = url;
        setText(elements.playerTitle, `Playing: ${nameOf(video)}`);
        setPlayerState('Loading…');
        markPlayingRow();

        const Hls = window.Hls;
        if (Hls && Hls.isSupported()) {
            // While a video is processing, its media playlists are EVENT
            // playlists. hls.js 1.7 plays them as live, from near the live
            // edge, unless a start position is given.
            const hls = new Hls({ startPosition: 0 });
            player.hls = hls;
            hls.on(Hls.Events.ERROR, (event, data) => onHlsError(hls, data));
            hls.on(Hls.Events.MANIFEST_PARSED,
                   () => startPlayback(automatic));
            hls.loadSource(url);
            hls.attachMedia(elements.video);
        } else if (elements.video.canPlayType(HLS_MIME_TYPE)) {
            elements.video.src = url;
            startPlayback(automatic);
        } else {
            setPlayerState('This browser cannot play HLS: it has neither ' +
                           'Media Source Extensions for hls.js nor native ' +
                           'HLS playback.');
        }
    }

    function setUpPlayerEvents() {
        const video = elements.video;

        video.addEventListener('playing', () => setPlayerState(video.muted
            ? 'Playing, muted. Unmute with the player controls.'
            : 'Playing.'));
        video.addEventListener('pause', () => {
            if (!video.ended && player.videoId)
                setPlayerState('Paused.');
        });
        video.addEventListener('ended', () => setPlayerState('Finished.'));
        video.addEventListener('waiting', () => {
            const current = videos.get(player.videoId);
            setPlayerState(current && current.status === 'processing'
                ? 'Waiting for the next segment to be processed…'
                : 'Buffering…');
        });
        video.addEventListener('error', onVideoError);
    }

    // Starts the pending automatic playback once the uploaded video has a
    // new playlist, and follows the video being played to a new upload of
    // the same name. poll is the number of the poll that got the list.
    function followVideos(poll) {
        if (pendingAutoplay && poll > pendingAutoplay.afterPoll) {
            const video = videos.get(pendingAutoplay.id);
            const url = playlistOf(video);

            if (video && video.status === 'failed') {
                setText(elements.uploadStatus,
                        `Processing of ${nameOf(video)} failed: ` +
                        `${video.error || 'no reason given'}`);
                pendingAutoplay = null;
            } else if (url && url !== pendingAutoplay.previousPlaylist) {
                pendingAutoplay = null;
                playVideo(video, true);
            }
        }

        const current = videos.get(player.videoId);
        const url = playlistOf(current);
        if (current && url && url !== player.playlist) {
            playVideo(current, true);
            setPlayerState(`${nameOf(current)} was uploaded again; ` +
                           'playing the new upload.');
        }
    }

    /* Video list */

    function createRow(id) {
        const cell = (tag) => document.createElement(tag);
        const row = {
            tr: cell('tr'),
            name: cell('th'),
            poster: cell('img'),
            nameText: cell('span'),
            status: cell('td'),
            statusText: cell('span'),
            error: cell('span'),
            progressCell: cell('td'),
            progress: cell('progress'),
            percent: cell('span'),
            duration: cell('td'),
            ladder: cell('td'),
            action: cell('td'),
            button: cell('button'),
            posterKey: null,
        };

        row.name.scope = 'row';
        row.poster.alt = '';
        row.poster.className = 'poster';
        row.poster.hidden = true;
        row.poster.addEventListener('error', () => {
            row.poster.hidden = true;
        });
        row.poster.addEventListener('load', () => {
            row.poster.hidden = false;
        });
        row.name.append(row.poster, row.nameText);

        row.statusText.className = 'status-text';
        row.error.className = 'error-text';
        row.status.append(row.statusText, row.error);

        row.progressCell.className = 'progress-cell';
        row.progress.max = 1;
        row.percent.className = 'percent';
        row.progressCell.append(row.progress, row.percent);

        row.button.type = 'button';
        row.button.addEventListener('click', () => {
            const video = videos.get(id);
            if (!video)
                return;
            pendingAutoplay = null;
            playVideo(video, false);
        });
        row.action.append(row.button);

        row.tr.append(row.name, row.status, row.progressCell, row.duration,
                      row.ladder, row.action);
        return row;
    }

    function updateRow(row, video) {
        const name = nameOf(video);
        const status = typeof video.status === 'string' ? video.status : '';
        const playable = playlistOf(video) !== null;
        const progress = status === 'ready' ? 1 : clampProgress(video.progress);

        setText(row.nameText, name);
        row.tr.dataset.status = status;

        let label = STATUS_LABELS[status] || status || 'unknown';
        if (status === 'processing' && playable)
            label += ', playable';
        setText(row.statusText, label);
        setText(row.error, typeof video.error === 'string' ? video.error : '');
        row.error.hidden = row.error.textContent === '';

        row.progress.value = progress;
        row.progress.setAttribute('aria-label', `Progress of ${name}`);
        setText(row.percent, `${Math.floor(progress * 100)}%`);

        setText(row.duration, formatDuration(video.duration));
        setText(row.ladder, formatLadder(video.ladder));

        row.button.disabled = !playable;
        row.button.setAttribute('aria-label', `Play ${name}`);

        // A poster that failed to load is tried again when the status
        // changes, since it may not have been written yet.
        const poster = sameOriginUrl(video.poster);
        const posterKey = `${poster}|${status}`;
        if (posterKey !== row.posterKey) {
            row.posterKey = posterKey;
            if (poster)
                row.poster.src = poster;
            else
                row.poster.removeAttribute('src');
            row.poster.hidden = !poster || !row.poster.complete ||
                row.poster.naturalWidth === 0;
        }
    }

    function markPlayingRow() {
        for (const [id, row] of rows) {
            const playing = id === player.videoId;
            setText(row.button, playing ? 'Playing' : 'Play');
            if (playing)
                row.tr.setAttribute('aria-current', 'true');
            else
                row.tr.removeAttribute('aria-current');
        }
    }

    // Puts the rows in the server's order, moving nodes only when the
    // order changed, because a moved node loses keyboard focus.
    function orderRows(ids) {
        const current = Array.from(elements.rows.children);
        const ordered = ids.map((id) => rows.get(id).tr);
        if (current.length === ordered.length &&
            current.every((tr, i) => tr === ordered[i]))
            return;

        const focused = document.activeElement;
        for (const tr of ordered)
            elements.rows.append(tr);
        if (focused && focused !== document.activeElement &&
            document.contains(focused))
            focused.focus();
    }

    function showVideos(list) {
        const ids = [];

        for (const video of list) {
            if (!video || typeof video.id !== 'string' ||
                ids.includes(video.id))
                continue;
            ids.push(video.id);
            videos.set(video.id, video);

            let row = rows.get(video.id);
            if (!row) {
                row = createRow(video.id);
                rows.set(video.id, row);
            }
            updateRow(row, video);
        }

        for (const [id, row] of rows) {
            if (ids.includes(id))
                continue;
            row.tr.remove();
            rows.delete(id);
            videos.delete(id);
        }

        orderRows(ids);
        markPlayingRow();
        elements.table.hidden = ids.length === 0;
        setText(elements.listStatus, ids.length === 0
            ? 'No videos yet. Upload one above.' : '');
    }

    /* Polling */

    async function describeFailedResponse(response) {
        try {
            const body = await response.json();
            if (body && typeof body.error === 'string')
                return body.error;
        } catch (error) {
            // A body that is not JSON leaves the status line to describe
            // the failure.
        }
        return `HTTP ${response.status} ${response.statusText}`.trim();
    }

    async function poll() {
        const number = ++pollCount;

        pollInFlight = true;
        try {
            const response = await fetch('/api/videos', {
                cache: 'no-store',
                headers: { Accept: 'application/json' },
            });
            if (!response.ok)
                throw new Error(await describeFailedResponse(response));

            const body = await response.json();
            if (!body || !Array.isArray(body.videos))
                throw new Error('the response has no "videos" list');

            showVideos(body.videos);
            followVideos(number);
        } catch (error) {
            setText(elements.listStatus,
                    `Cannot load the list of videos: ${error.message}. ` +
                    'Retrying.');
        } finally {
            pollInFlight = false;
            schedulePoll();
        }
    }

    function schedulePoll() {
        clearTimeout(pollTimer);
        pollTimer = setTimeout(poll, document.hidden
            ? HIDDEN_POLL_INTERVAL_MS : POLL_INTERVAL_MS);
    }

    function pollNow() {
        if (pollInFlight)
            return;
        clearTimeout(pollTimer);
        poll();
    }

    /* Start */

    elements.fileInput.addEventListener('change',
        () => takeFiles(elements.fileInput.files));
    elements.cancelButton.addEventListener('click', () => {
        if (upload)
            upload.xhr.abort();
    });
    document.addEventListener('visibilitychange', () => {
        if (!document.hidden)
            pollNow();
    });
    setUpDropZone();
    setUpPlayerEvents();
    poll();
})();
