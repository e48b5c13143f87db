// One-shot set-up of the replica set rs0 (deploy/compose.infra.yml, service mongo-init), safe to run again:
// initiates rs0 when it is not, waits for a primary, then creates the application's user or resets its password
// and roles. Credentials come from the environment, so they never appear in a command line.
const env = process.env;

function need(name) {
  if (!env[name]) {
    print(`mongo-init: ${name} is not set`);
    quit(2);
  }
  return env[name];
}

// The names the app and worker hosts map to INFRA_HOST (extra_hosts); each member listens on its own port.
const members = [
  { _id: 0, host: "mongo1:27017", priority: 2 },
  { _id: 1, host: "mongo2:27018", priority: 1 },
  { _id: 2, host: "mongo3:27019", priority: 1 },
];
const rootUser = need("MONGO_ROOT_USER");
const rootPassword = need("MONGO_ROOT_PASSWORD");

function command(admin, doc) {
  try {
    return admin.runCommand(doc);
  } catch (error) {
    return { ok: 0, codeName: error.codeName, errmsg: error.message };
  }
}

const first = new Mongo("mongodb://mongo1:27017/?directConnection=true").getDB("admin");
first.auth(rootUser, rootPassword);
const status = command(first, { replSetGetStatus: 1 });
if (status.ok !== 1) {
  if (status.codeName !== "NotYetInitialized") {
    print(`mongo-init: replSetGetStatus failed: ${status.errmsg}`);
    quit(1);
  }
  const initiated = command(first, { replSetInitiate: { _id: "rs0", members } });
  if (initiated.ok !== 1) {
    print(`mongo-init: replSetInitiate failed: ${initiated.errmsg}`);
    quit(1);
  }
  print("mongo-init: rs0 initiated");
}

let primary = null;
for (let waited = 0; !primary; waited++) {
  primary = command(first, { hello: 1 }).primary;
  if (!primary) {
    if (waited >= 120) {
      print("mongo-init: no primary after 120 s");
      quit(1);
    }
    sleep(1000);
  }
}

const hosts = members.map((member) => member.host).join(",");
const admin = new Mongo(`mongodb://${hosts}/?replicaSet=rs0`).getDB("admin");
admin.auth(rootUser, rootPassword);
const user = need("MONGO_APP_USER");
const roles = [{ role: "readWrite", db: env.MONGO_APP_DB || "waq" }];
if (admin.getUser(user)) {
  admin.updateUser(user, { pwd: need("MONGO_APP_PASSWORD"), roles }, { w: "majority" });
  print(`mongo-init: user ${user} updated (primary ${primary})`);
} else {
  admin.createUser({ user, pwd: need("MONGO_APP_PASSWORD"), roles }, { w: "majority" });
  print(`mongo-init: user ${user} created (primary ${primary})`);
}
