// Entry point ("main" in package.json). Settings are validated first, so a missing or malformed
// one stops start-up with its name instead of failing later inside a request.
import { loadConfig } from '../shared/config';

loadConfig();

import './connectionsCollection';
import './connectionItem';
import './connectionTest';
import './connectionSegments';
import './exportsCollection';
import './exportItem';
import './exportDuplicate';
import './exportDetach';
import './exportRetryCleanup';
import './exportRestore';
import './exportRun';
import './exportPreview';
import './exportDraftPreview';
import './exportsRunAll';
import './exportRuns';
import './runItem';
import './runRejectedReport';
import './runCancel';
import './runApprove';
import './runDismiss';
import './exportVerify';
import './runRepair';
import './runDriftReport';
import './exportWorker';
import './exportWorkerPoison';
import './scheduledRefresh';
import './health';
import './sources';
import './me';
import './console';
