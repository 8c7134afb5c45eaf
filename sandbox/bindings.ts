// Guest halves of env bindings register their factories with env.ts on import.
import '../bindings/kv/guest.js';
import '../bindings/service/guest.js';
// TEMPORARY until the add-on mechanism lands on main: the Durable Objects add-on installed in the
// base bundle. Replaced by a row in protocol/addons.ts at merge.
import installDurableObjects from './addons/durable-objects.js';
installDurableObjects();
