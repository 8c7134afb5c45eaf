// Guest halves of env bindings register their factories with env.ts on import.
import '../bindings/kv/guest.js';
import '../bindings/service/guest.js';
// TEMPORARY until add-ons land: the D1 add-on installed in the base bundle.
import installD1 from './addons/d1.js';
installD1();
